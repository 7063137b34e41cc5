"""scratch: recurrent networks in pure NumPy, with hand-written backpropagation through time.

The public surface mirrors torch.nn (same constructor arguments, state_dict keys and shapes),
with an explicit ``backward``. Nothing here imports torch.
"""

from scratch.cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from scratch.module import CallOrderError, Module
from scratch.recurrent import GRU, LSTM, RNN, RNNBase

__all__ = [
    "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "CallOrderError", "Module", "RNNBase",
    "RNNCell", "RNNCellBase",
]
