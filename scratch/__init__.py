"""scratch: recurrent networks in pure NumPy, with hand-written backpropagation through time.

The public surface mirrors torch.nn (same constructor arguments, state_dict keys and shapes),
with an explicit ``backward``. Nothing here imports torch.
"""

from scratch.cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from scratch.clip import clip_grad_norm_, clip_grad_value_
from scratch.embedding import Embedding
from scratch.linear import Linear
from scratch.losses import CrossEntropyLoss, MSELoss
from scratch.models import CharLM, SimpleRNN
from scratch.module import CallOrderError, Module
from scratch.optim import SGD, Adam, AdamW
from scratch.recurrent import GATES, GRU, LSTM, RNN, RNNBase

__all__ = [
    "GATES", "GRU", "LSTM", "RNN", "SGD", "Adam", "AdamW", "CallOrderError", "CharLM",
    "CrossEntropyLoss", "Embedding", "GRUCell", "LSTMCell", "Linear", "MSELoss", "Module",
    "RNNBase", "RNNCell", "RNNCellBase", "SimpleRNN",
    "clip_grad_norm_", "clip_grad_value_",
]
