"""The study core: one file per cell kind, each a pair of plain functions.

Every cell is written twice over the same math:

* ``*_step_forward`` / ``*_step_backward``: the recurrent part of one time step. It takes the
  input's share of the gates, ``x @ W_ih.T + b_ih``, already computed, because the sequence loop
  computes that for all time steps in one matrix product.
* ``*_cell_forward`` / ``*_cell_backward``: the whole cell as a textbook writes it, input
  projection included. It calls the step functions, so there is one copy of the math.

Step backward functions return the gradients of the pre-activations (``dgates`` and friends)
and leave the weight gradients to the caller: a weight gradient is an outer product summed over
the batch, and over time the sequence loop sums it in one matrix product after the loop.

Every function is pure: arrays in, new arrays and a NamedTuple cache out; nothing passed in
is written into. Each line is one equation of the module docstring, its shape and (in a
backward pass) the chain-rule step in the comment beside it.
"""

from scratch.functional.gru_cell import (
    GRUCellGrads,
    gru_cell_backward,
    gru_cell_forward,
    gru_step_backward,
    gru_step_forward,
)
from scratch.functional.lstm_cell import (
    LSTMCellGrads,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_step_backward,
    lstm_step_forward,
)
from scratch.functional.rnn_cell import (
    RNNCellGrads,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_step_backward,
    rnn_step_forward,
)

__all__ = [
    "GRUCellGrads",
    "LSTMCellGrads",
    "RNNCellGrads",
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
