"""The study core: one file per cell, each a pair of plain functions.

Every cell is written twice over the same math:

* ``*_step_forward`` / ``*_step_backward``: the recurrent part of one time step. It takes
  ``x_proj = x @ W_ih.T + b_ih``, the input's share of the pre-activation, already computed,
  because the sequence loop computes that for all time steps in one matrix product.
* ``*_cell_forward`` / ``*_cell_backward``: the whole cell as a textbook writes it, input
  projection included. It calls the step functions, so there is one copy of the math.

Step backward functions return the gradients of the pre-activations (a NamedTuple:
``RNNStepGrads``, ``LSTMStepGrads``, ``GRUStepGrads``) and leave the weight gradients to the
caller: a weight gradient is an outer product summed over the batch, and over time the
sequence loop sums it in one matrix product after the loop.

Every function is pure: arrays in, new arrays and a NamedTuple cache out; nothing passed in
is written into. Each line is one equation of the module docstring, its shape and (in a
backward pass) the chain-rule step in the comment beside it.

Symbols, in every docstring and shape comment of ``scratch/`` (torch.nn.RNN's names):

    T       sequence length (time steps)
    B       batch size
    I       input size: x is (B, I), a sequence's input (T, B, I)
    H       hidden size: the cell state c and each gate are (B, H)
    P       proj_size, the LSTM's projection (0 for none): W_hr is (P, H)
    H_out   the size of h: P with a projection, else H
    G       gate blocks stacked in W_ih (G*H, I), W_hh (G*H, H_out) and the biases (G*H,):
            1 for the RNN, 4 for the LSTM (i | f | g | o), 3 for the GRU (r | z | n)
    L       num_layers;  D  directions, 2 if bidirectional else 1
    x_proj  x @ W_ih.T + b_ih (B, G*H), the input's share of the pre-activation
    dname   dL/dname, the gradient of the loss L with respect to ``name``, of its shape
"""

from scratch.functional.gru_cell import (
    GRUCellGrads,
    GRUStepGrads,
    gru_cell_backward,
    gru_cell_forward,
    gru_step_backward,
    gru_step_forward,
)
from scratch.functional.lstm_cell import (
    LSTMCellGrads,
    LSTMStepGrads,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_step_backward,
    lstm_step_forward,
)
from scratch.functional.rnn_cell import (
    RNNCellGrads,
    RNNStepGrads,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_step_backward,
    rnn_step_forward,
)

__all__ = [
    "GRUCellGrads",
    "GRUStepGrads",
    "LSTMCellGrads",
    "LSTMStepGrads",
    "RNNCellGrads",
    "RNNStepGrads",
    "gru_cell_backward",
    "gru_cell_forward",
    "gru_step_backward",
    "gru_step_forward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "rnn_cell_backward",
    "rnn_cell_forward",
    "rnn_step_backward",
    "rnn_step_forward",
]
