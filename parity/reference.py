"""The torch side of a parity case: outputs, final states and every gradient.

Two references, chosen by the case:
* torch.nn.RNN / LSTM / GRU (variable lengths through pack_padded_sequence with
  enforce_sorted=False and pad_packed_sequence back to T) for every case but explicit dropout
  masks;
* torch_impl.equations (the same equations step by step, autograd for the gradients) for
  explicit dropout masks, which torch.nn cannot take.

On CUDA, float32 runs with TF32 off (see ``configure_cuda``). cuDNN's backward needs train
mode, so an eval-mode case runs the torch.nn twin in train mode with dropout 0, which computes
the same thing (a recurrent layer's eval mode only switches dropout off); the CPU runs check
eval mode itself.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from parity.calls import layer_arguments, layer_inputs
from parity.case import Case, CaseData
from parity.spec import MODES
from torch_impl import equations

TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}


class HarnessError(RuntimeError):
    """The torch side did not produce what the harness needs (a bug of the harness or of the
    installed torch, never of the implementation under test)."""


class Outcome(NamedTuple):
    """What one side computed for a case, as NumPy arrays in the user's layout."""

    output: np.ndarray
    h_n: np.ndarray
    c_n: np.ndarray | None
    grad_input: np.ndarray
    grad_h0: np.ndarray | None
    grad_c0: np.ndarray | None
    grads: dict[str, np.ndarray]


def configure_cuda() -> None:
    """Exact float32 on a GPU: no TF32 in cuDNN's RNNs nor in matrix products.

    Only the legacy flags are set: mixing them with the newer fp32_precision settings makes
    later reads of either raise.
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def cuda_available() -> bool:
    return torch.cuda.is_available()


def _tensor(array, case: Case, requires_grad: bool = False):
    """An array as a tensor of the case's dtype on its device; a tuple of arrays (an LSTM's
    state) as a tuple of tensors; None as None."""
    if array is None:
        return None
    if isinstance(array, tuple):
        return tuple(_tensor(a, case, requires_grad) for a in array)
    t = torch.tensor(array, dtype=TORCH_DTYPE[case.dtype], device=case.device)
    return t.requires_grad_(requires_grad)


def as_array(t: torch.Tensor | None) -> np.ndarray | None:
    """A tensor as a NumPy array (None stays None)."""
    return None if t is None else t.detach().cpu().numpy()


def build_nn(case: Case) -> nn.Module:
    """The empty torch.nn module of the case's configuration, on its device and dtype."""
    args, kwargs = layer_arguments(case)
    with warnings.catch_warnings():  # dropout with one layer: torch warns, as scratch does
        warnings.simplefilter("ignore", UserWarning)
        return getattr(nn, MODES[case.mode].cls)(*args, dtype=TORCH_DTYPE[case.dtype],
                                                 device=case.device, **kwargs)


def torch_outcome(case: Case, data: CaseData, via: str = "auto") -> Outcome:
    """Run the case through torch and back-propagate the case's upstream gradients.

    via: "auto" (torch_impl.equations for explicit masks, torch.nn otherwise), "nn" or
    "equations" (with p = 1 as masks of zeros; the eval and p = 0 cases need none).
    """
    if via not in ("auto", "nn", "equations"):
        raise ValueError(f"via must be 'auto', 'nn' or 'equations', got {via!r}")
    if via == "nn" and case.dropout_mode == "train_masks":
        raise ValueError("torch.nn cannot take explicit dropout masks: use via='equations'")
    use_equations = via == "equations" or case.dropout_mode == "train_masks"
    hx, grad_state, _ = layer_inputs(case, data)
    x, hx = (_tensor(a, case, requires_grad=True) for a in (data.input, hx))
    h0, c0 = hx if isinstance(hx, tuple) else (hx, None)

    if use_equations:
        params = {k: _tensor(v, case, requires_grad=True) for k, v in data.params.items()}
        masks = None
        if case.dropout_mode == "train_masks":
            masks = [_tensor(m, case) for m in data.masks or []]
        elif case.dropout_mode == "train_p1" and case.num_layers > 1:
            masks = [torch.zeros_like(_tensor(data.grad_output, case))] * (case.num_layers - 1)
        output, state = equations.forward(
            case.mode, params, x, hx, case.lengths, batch_first=case.batch_first,
            dropout_masks=masks,
        )
        named = params
    else:
        module = build_nn(case)
        with torch.no_grad():
            for name, param in module.named_parameters():
                param.copy_(_tensor(data.params[name], case))
        module.train(case.training)
        if case.device == "cuda" and not case.training:
            module.dropout = 0.0  # eval semantics in train mode, which cuDNN's backward needs
            module.train(True)
        with warnings.catch_warnings():  # "LSTM with projections is not supported with
            warnings.simplefilter("ignore", UserWarning)  # oneDNN": it falls back, rightly
            output, state = _run_nn(case, module, x, hx)
        named = dict(module.named_parameters())

    h_n, c_n = state if case.mode == "LSTM" else (state, None)
    # the upstream gradients a layer's backward() is given, each with its output
    given = _with_gradients((output, state), (data.grad_output, grad_state))
    torch.autograd.backward([t for t, _ in given], [_tensor(g, case) for _, g in given])

    missing = [name for name, p in named.items() if p.grad is None]
    missing += [name for name, t in (("input", x), ("h0", h0), ("c0", c0))
                if t is not None and t.grad is None]
    if missing:
        raise HarnessError(f"torch produced no gradient for {missing} ({case.describe()})")
    return Outcome(
        output=as_array(output),
        h_n=as_array(h_n),
        c_n=as_array(c_n),
        grad_input=as_array(x.grad),
        grad_h0=None if h0 is None else as_array(h0.grad),
        grad_c0=None if c0 is None else as_array(c0.grad),
        grads={name: as_array(p.grad) for name, p in named.items()},
    )


def _with_gradients(outputs, upstream) -> list[tuple]:
    """(output tensor, its upstream gradient) of each output that has one; ``outputs`` and
    ``upstream`` alike nested (a state (h_n, c_n) beside (grad_h_n, grad_c_n)), an upstream
    None where an output, or a whole state, has no gradient."""
    if upstream is None:
        return []
    if isinstance(outputs, tuple):
        return [pair for o, g in zip(outputs, upstream) for pair in _with_gradients(o, g)]
    return [(outputs, upstream)]


def _run_nn(case: Case, module: nn.Module, x, hx):
    if case.lengths is None:
        return module(x, hx)
    lengths = torch.tensor(case.lengths, dtype=torch.int64)  # on the CPU, as torch requires
    packed = pack_padded_sequence(x, lengths, batch_first=case.batch_first,
                                  enforce_sorted=False)
    packed_output, state = module(packed, hx)
    output, _ = pad_packed_sequence(packed_output, batch_first=case.batch_first,
                                    total_length=case.seq_len)
    return output, state
