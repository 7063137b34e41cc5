"""torch.nn twins of the scratch cells: RNNCell, LSTMCell and GRUCell.

The cells' parameter names (weight_ih, weight_hh, bias_ih, bias_hh) are torch's, so the
weights travel through the state dict like those of the layers.
"""

from __future__ import annotations

from torch import nn

import scratch
from torch_impl.convert import NUMPY_DTYPE, register_twin


def _cell_to_torch(m: scratch.RNNCellBase) -> nn.Module:
    if isinstance(m, scratch.RNNCell):
        return nn.RNNCell(m.input_size, m.hidden_size, bias=m.bias, nonlinearity=m.nonlinearity)
    if isinstance(m, scratch.LSTMCell):
        return nn.LSTMCell(m.input_size, m.hidden_size, bias=m.bias)
    return nn.GRUCell(m.input_size, m.hidden_size, bias=m.bias)


def _cell_from_torch(t: nn.Module) -> scratch.Module:
    dtype = NUMPY_DTYPE[t.weight_ih.dtype]
    if isinstance(t, nn.RNNCell):
        return scratch.RNNCell(t.input_size, t.hidden_size, bias=t.bias,
                               nonlinearity=t.nonlinearity, dtype=dtype)
    if isinstance(t, nn.LSTMCell):
        return scratch.LSTMCell(t.input_size, t.hidden_size, bias=t.bias, dtype=dtype)
    return scratch.GRUCell(t.input_size, t.hidden_size, bias=t.bias, dtype=dtype)


for _name, _type in (("RNNCell", nn.RNNCell), ("LSTMCell", nn.LSTMCell),
                     ("GRUCell", nn.GRUCell)):
    register_twin(_name, _type, _cell_to_torch, _cell_from_torch)
