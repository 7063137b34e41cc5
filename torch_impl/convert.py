"""Conversion between scratch modules and their torch.nn twins.

Each scratch class has a builder that makes an empty torch twin of the same configuration
(``register_twin``); weights then travel through the state dict, whose keys are the same on
both sides by design.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import scratch

TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}

# scratch class name -> (builder of the empty torch twin, builder of the empty scratch twin)
_TO_TORCH: dict[str, Callable[[scratch.Module], nn.Module]] = {}
_FROM_TORCH: dict[type, Callable[[nn.Module], scratch.Module]] = {}


def register_twin(scratch_name: str, torch_type: type, to_torch_builder, from_torch_builder):
    """Declare how to build an empty twin on each side; weights are copied afterwards."""
    _TO_TORCH[scratch_name] = to_torch_builder
    _FROM_TORCH[torch_type] = from_torch_builder


def copy_into_torch(state_dict, module: nn.Module) -> None:
    """Copy NumPy arrays into a torch module's parameters in place (keys must match)."""
    params = dict(module.named_parameters())
    if set(params) != set(state_dict):
        raise ValueError(
            f"parameter names differ: torch has {sorted(params)}, got {sorted(state_dict)}"
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(torch.as_tensor(np.asarray(state_dict[name])))


def to_torch(module: scratch.Module, device="cpu") -> nn.Module:
    """The torch.nn twin of a scratch module: same configuration, dtype and weights.

    The twin is in the same train/eval mode as the scratch module.
    """
    name = type(module).__name__
    if name not in _TO_TORCH:
        raise TypeError(f"no torch twin is registered for scratch class {name}")
    twin = _TO_TORCH[name](module)
    twin = twin.to(device=device, dtype=TORCH_DTYPE[np.dtype(module.dtype)])
    copy_into_torch(module.state_dict(), twin)
    twin.train(module.training)
    return twin


def from_torch(module: nn.Module, seed: int | None = None) -> scratch.Module:
    """The scratch twin of a torch.nn module, with its weights (copied to NumPy)."""
    for torch_type, builder in _FROM_TORCH.items():
        if type(module) is torch_type:
            twin = builder(module)
            break
    else:
        raise TypeError(f"no scratch twin is registered for {type(module).__name__}")
    twin.load_state_dict(
        {k: v.detach().cpu().numpy() for k, v in module.named_parameters()}
    )
    twin.train(module.training)
    return twin


def _dtype_of(module: nn.Module):
    return NUMPY_DTYPE[next(module.parameters()).dtype]


# -- the recurrent layers ---------------------------------------------------------------------
def _rnn_to_torch(m) -> nn.Module:
    common = dict(num_layers=m.num_layers, bias=m.bias, batch_first=m.batch_first,
                  dropout=m.dropout, bidirectional=m.bidirectional)
    if m.mode == "LSTM":
        return nn.LSTM(m.input_size, m.hidden_size, proj_size=m.proj_size, **common)
    if m.mode == "GRU":
        return nn.GRU(m.input_size, m.hidden_size, **common)
    return nn.RNN(m.input_size, m.hidden_size, nonlinearity=m.nonlinearity, **common)


def _rnn_from_torch(t: nn.Module) -> scratch.Module:
    common = dict(num_layers=t.num_layers, bias=t.bias, batch_first=t.batch_first,
                  dropout=t.dropout, bidirectional=t.bidirectional, dtype=_dtype_of(t))
    if isinstance(t, nn.LSTM):
        return scratch.LSTM(t.input_size, t.hidden_size, proj_size=t.proj_size, **common)
    if isinstance(t, nn.GRU):
        return scratch.GRU(t.input_size, t.hidden_size, **common)
    return scratch.RNN(t.input_size, t.hidden_size, nonlinearity=t.nonlinearity, **common)


for _name, _type in (("RNN", nn.RNN), ("LSTM", nn.LSTM), ("GRU", nn.GRU)):
    register_twin(_name, _type, _rnn_to_torch, _rnn_from_torch)
