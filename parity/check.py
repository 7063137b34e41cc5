"""``python -m parity check [DIR]``: check your own functions before you hand them in.

Run it in the directory that holds your ``scratch/`` package (or give that directory). Every
function the rubric grades is checked on its own, item by item, as the grader splits them:

* a **forward** function against the same equations computed by torch;
* a **backward** function against torch's autograd of those equations, or, when torch is not
  installed, against central finite differences of your own forward function;
* where a function calls others you write (the loop over time calls the step functions, a
  layer calls the loop over time), those others are replaced, for that check, by torch's
  answers (when torch is installed), so that one mistake shows up in one place.

For each function it prints PASS or FAIL and, for a failure, the smallest case that fails,
the first value that differs, and its relative error: what the grader's feedback says. It
holds no reference solution: only the equations, written in torch, and your own code.

This file is self-contained (NumPy and the standard library; torch when installed): the
handout ships it as ``parity/check.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

try:
    import torch
except ImportError:  # the backward functions are then checked by finite differences
    torch = None  # type: ignore[assignment]

# |yours - torch| <= TOL * max(1, max |torch|), element by element: the grader's criterion
# (parity.tolerances.FLOAT64_TOL; a test keeps the two equal)
TOL = 1e-10
# against finite differences (step FD_EPS) the bound is looser: the differences themselves
# are only accurate to ~1e-9, and a wrong gradient is off by 1e-3 or more
FD_TOL = 1e-6
FD_EPS = 1e-6

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
KIND = {"RNN_TANH": "rnn", "RNN_RELU": "rnn", "LSTM": "lstm", "GRU": "gru"}


class NotChecked(Exception):
    """This function cannot be checked here (torch missing, something it needs missing)."""


class Mismatch(Exception):
    """Your function returned something else than the equations give."""


# -- the cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    mode: str  # RNN_TANH, RNN_RELU, LSTM, GRU
    B: int = 2
    I: int = 3  # noqa: E741
    H: int = 4
    P: int = 0  # LSTM projection
    T: int = 3
    bias: bool = True
    reverse: bool = False
    lengths: tuple | None = None
    layers: int = 1
    bidirectional: bool = False
    hx: bool = True
    dropout: float = 0.0  # train mode with explicit masks when > 0
    seed: int = 0
    level: str = "cell"  # which functions the case is for: cell, sequence or layer

    @property
    def H_out(self) -> int:
        return self.P or self.H

    def size(self) -> int:
        return self.B * self.T * self.layers * (self.I + self.H) * (2 if self.bidirectional
                                                                    else 1)

    def describe(self, level: str) -> str:
        kind = {"RNN_TANH": "RNN (tanh)", "RNN_RELU": "RNN (relu)"}.get(self.mode, self.mode)
        parts = [kind, f"B={self.B}", f"input_size={self.I}", f"hidden_size={self.H}"]
        if self.P:
            parts.append(f"proj_size={self.P}")
        if level != "cell":
            parts.append(f"T={self.T}")
        if level == "layer":
            parts.append(f"{self.layers} layer{'s' if self.layers > 1 else ''}")
            if self.bidirectional:
                parts.append("bidirectional")
            parts.append("hx given" if self.hx else "no hx")
            if self.dropout:
                parts.append(f"train mode with dropout masks (p={self.dropout})")
        if level == "sequence" and self.reverse:
            parts.append("reverse direction")
        if self.lengths is not None:
            parts.append(f"lengths {list(self.lengths)}")
        parts.append("with bias" if self.bias else "no bias")
        parts.append(f"seed {self.seed}")
        return ", ".join(parts)


def _family(modes, level: str, **fixed) -> list[Case]:
    """A few cases per mode, smallest first: the first that fails is the smallest."""
    sizes = [dict(B=1, I=1, H=1, T=1), dict(B=2, I=3, H=2, T=3), dict(B=3, I=2, H=5, T=4)]
    if level == "layer":
        sizes = [dict(B=1, I=1, H=1, T=1), dict(B=2, I=3, H=2, T=3)]
    cases = []
    for n, size in enumerate(sizes):
        for mode in modes:
            for bias in (True, False):
                args = dict(size, **fixed)
                if args.get("P"):
                    args["H"] = max(args["H"], 2)
                    args["P"] = min(args["P"], args["H"] - 1)
                if args.get("lengths") is not None:
                    args["T"] = max(args["T"], 2)
                    args["lengths"] = tuple(max(1, args["T"] - 1 - (b % args["T"]))
                                            for b in range(args["B"]))
                cases.append(Case(mode, bias=bias, seed=7 * n + len(cases), level=level,
                                  **args))
    return sorted(cases, key=Case.size)


ALL_MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
# the cases of each rubric item, as the grader draws them (parity/grading/items.py)
ITEM_CASES: dict[str, Callable[[], list[Case]]] = {
    "rnn_forward": lambda: _family(("RNN_TANH", "RNN_RELU"), "cell"),
    "rnn_backward": lambda: _family(("RNN_TANH", "RNN_RELU"), "cell"),
    "lstm_forward": lambda: _family(("LSTM",), "cell"),
    "lstm_backward": lambda: _family(("LSTM",), "cell"),
    "gru_forward": lambda: _family(("GRU",), "cell"),
    "gru_backward": lambda: _family(("GRU",), "cell"),
    "proj_size": lambda: _family(("LSTM",), "cell", P=1),
    "sequence_forward": lambda: _family(ALL_MODES, "sequence") + _family(("LSTM",), "sequence",
                                                                         P=1),
    "bptt": lambda: _family(ALL_MODES, "sequence") + _family(("LSTM",), "sequence", P=1),
    "lengths": lambda: (_family(("RNN_TANH", "RNN_RELU", "LSTM"), "sequence", lengths=())
                        + _family(("RNN_TANH", "LSTM"), "sequence", lengths=(), reverse=True)),
    "bidirectional": lambda: (_family(("RNN_TANH", "RNN_RELU", "LSTM"), "sequence",
                                      reverse=True)
                              + _family(ALL_MODES, "layer", bidirectional=True)
                              + _family(("GRU",), "layer", bidirectional=True, layers=2)),
    "layer": lambda: (_family(ALL_MODES, "layer") + _family(("LSTM",), "layer", P=1)
                      + _family(("GRU",), "layer", hx=False)),
    "multi_layer": lambda: _family(ALL_MODES, "layer", layers=2),
    "dropout": lambda: _family(ALL_MODES, "layer", layers=2, dropout=0.5),
}


def level_of(function: str) -> str:
    if function.startswith("direction_"):
        return "sequence"
    if function.startswith("RNNBase."):
        return "layer"
    return "cell"


# -- arrays of a case --------------------------------------------------------------------------
class Data(NamedTuple):
    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (B, H_out)
    c0: np.ndarray | None  # (B, H)
    W_ih: np.ndarray
    W_hh: np.ndarray
    b_ih: np.ndarray | None
    b_hh: np.ndarray | None
    W_hr: np.ndarray | None
    x_proj: np.ndarray  # (T, B, G*H), random (the sequence level takes it as given)
    dout: np.ndarray  # (T, B, H_out)
    dh: np.ndarray  # (B, H_out)
    dc: np.ndarray | None  # (B, H)
    valid: np.ndarray | None  # (T, B, 1) bool


def make_data(case: Case) -> Data:
    rng = np.random.default_rng(case.seed)
    G, H, H_out, I, B, T = GATES[case.mode], case.H, case.H_out, case.I, case.B, case.T
    k = 1.0 / np.sqrt(H)
    lstm = case.mode == "LSTM"
    valid = None
    if case.lengths is not None:
        valid = (np.arange(T)[:, None] < np.array(case.lengths)[None, :])[:, :, None]
    return Data(
        x=rng.standard_normal((T, B, I)), h0=0.5 * rng.standard_normal((B, H_out)),
        c0=0.5 * rng.standard_normal((B, H)) if lstm else None,
        W_ih=rng.uniform(-k, k, (G * H, I)), W_hh=rng.uniform(-k, k, (G * H, H_out)),
        b_ih=rng.uniform(-k, k, G * H) if case.bias else None,
        b_hh=rng.uniform(-k, k, G * H) if case.bias else None,
        W_hr=rng.uniform(-k, k, (case.P, H)) if case.P else None,
        x_proj=rng.standard_normal((T, B, G * H)), dout=rng.standard_normal((T, B, H_out)),
        dh=rng.standard_normal((B, H_out)),
        dc=rng.standard_normal((B, H)) if lstm else None, valid=valid)


# -- comparing ---------------------------------------------------------------------------------
def compare(name: str, mine, want, tol: float = TOL, against: str = "torch's equations"):
    """Raise Mismatch at the first value of ``mine`` off by more than tol * max(1, max|want|)."""
    if want is None:
        if mine is not None:
            raise Mismatch(f"{name}: expected None, got {type(mine).__name__}")
        return
    if mine is None:
        raise Mismatch(f"{name}: got None, expected an array of shape {want.shape}")
    mine = np.asarray(mine)
    if mine.shape != want.shape:
        raise Mismatch(f"{name}: shape {mine.shape}, expected {want.shape}")
    if want.size == 0:
        return
    a, b = mine.astype(np.float64), want.astype(np.float64)
    bound = tol * max(1.0, float(np.max(np.abs(b))))
    bad = ~(np.abs(a - b) <= bound)  # NaN counts as wrong
    if not bad.any():
        return
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    got, expected = a[index], b[index]
    rel = abs(got - expected) / max(abs(expected), 1e-300)
    where = f"{name}[{', '.join(map(str, index))}]" if index else name
    raise Mismatch(f"{where} = {got:.10g}, expected {expected:.10g} from {against} "
                   f"(relative error {rel:.1e}; allowed: {tol:g} * max(1, max|{name}|))")


def field(result, name: str, index: int):
    """A returned NamedTuple's field by name (by position for a plain tuple)."""
    if hasattr(result, "_fields") and name in result._fields:
        return getattr(result, name)
    if isinstance(result, (tuple, list)) and len(result) > index:
        return result[index]
    raise Mismatch(f"the result has no {name} (got {type(result).__name__})")


def unpack(result, count: int, what: str):
    if not isinstance(result, (tuple, list)) or len(result) != count:
        n = len(result) if isinstance(result, (tuple, list)) else 1
        raise Mismatch(f"should return {what}, got {n} value(s)")
    return result


# -- torch: the equations ----------------------------------------------------------------------
def _t(a, grad=False):
    if a is None:
        return None
    return torch.tensor(np.asarray(a, dtype=np.float64)).requires_grad_(grad)


def _n(t):
    return None if t is None else t.detach().numpy().copy()


def torch_step(mode, x_proj, h_prev, c_prev, W_hh, b_hh, W_hr, gh_leaf=None):
    """One step in torch; returns (h, c, values for the cache by field name)."""
    if mode in ("RNN_TANH", "RNN_RELU"):
        pre = x_proj + h_prev @ W_hh.T
        if b_hh is not None:
            pre = pre + b_hh
        h = torch.tanh(pre) if mode == "RNN_TANH" else torch.relu(pre)
        return h, None, {"h_prev": h_prev, "h": h}
    if mode == "LSTM":
        gates = x_proj + h_prev @ W_hh.T
        if b_hh is not None:
            gates = gates + b_hh
        H = c_prev.shape[-1]
        i = torch.sigmoid(gates[:, :H])
        f = torch.sigmoid(gates[:, H:2 * H])
        g = torch.tanh(gates[:, 2 * H:3 * H])
        o = torch.sigmoid(gates[:, 3 * H:])
        c = f * c_prev + i * g
        tanh_c = torch.tanh(c)
        h_full = o * tanh_c
        h = h_full if W_hr is None else h_full @ W_hr.T
        return h, c, {"h_prev": h_prev, "c_prev": c_prev, "i": i, "f": f, "g": g, "o": o,
                      "c": c, "tanh_c": tanh_c, "h_full": h_full}
    H = h_prev.shape[-1]
    gh = h_prev @ W_hh.T
    if b_hh is not None:
        gh = gh + b_hh
    if gh_leaf is not None:
        gh = gh_leaf
    r = torch.sigmoid(x_proj[:, :H] + gh[:, :H])
    z = torch.sigmoid(x_proj[:, H:2 * H] + gh[:, H:2 * H])
    gh_n = gh[:, 2 * H:]
    n = torch.tanh(x_proj[:, 2 * H:] + r * gh_n)
    h = (1 - z) * n + z * h_prev
    return h, None, {"h_prev": h_prev, "r": r, "z": z, "n": n, "gh_n": gh_n}


def torch_direction(mode, x_proj, h0, c0, W_hh, b_hh, W_hr, valid, reverse):
    T = x_proj.shape[0]
    h, c = h0, c0
    outputs: list = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        h_new, c_new, _ = torch_step(mode, x_proj[t], h, c, W_hh, b_hh, W_hr)
        if valid is None:
            h, c, outputs[t] = h_new, c_new, h_new
        else:
            m = torch.tensor(valid[t])
            h = torch.where(m, h_new, h)
            c = None if c is None else torch.where(m, c_new, c)
            outputs[t] = torch.where(m, h_new, torch.zeros_like(h_new))
    return torch.stack(outputs), h, c


def layer_param_names(case: Case) -> list[str]:
    names = []
    for layer in range(case.layers):
        for direction in range(2 if case.bidirectional else 1):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            names += [f"weight_ih{sfx}", f"weight_hh{sfx}"]
            if case.bias:
                names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
            if case.P:
                names.append(f"weight_hr{sfx}")
    return names


class LayerData(NamedTuple):
    params: dict
    x: np.ndarray
    h0: np.ndarray | None
    c0: np.ndarray | None
    masks: list | None
    dout: np.ndarray
    dh_n: np.ndarray
    dc_n: np.ndarray | None


def make_layer_data(case: Case) -> LayerData:
    rng = np.random.default_rng(case.seed)
    G, H, H_out, D = GATES[case.mode], case.H, case.H_out, 2 if case.bidirectional else 1
    k = 1.0 / np.sqrt(H)
    params = {}
    for name in layer_param_names(case):
        layer = int(name.split("_l")[1].split("_")[0])
        width = case.I if layer == 0 else D * H_out
        shape = {"weight_ih": (G * H, width), "weight_hh": (G * H, H_out),
                 "bias_ih": (G * H,), "bias_hh": (G * H,), "weight_hr": (case.P, H)}[
            name.rsplit("_l", 1)[0]]
        params[name] = rng.uniform(-k, k, shape)
    rows = case.layers * D
    lstm = case.mode == "LSTM"
    masks = None
    if case.dropout:
        keep = 1.0 - case.dropout
        masks = [(rng.random((case.T, case.B, D * H_out)) < keep) / keep
                 for _ in range(case.layers - 1)]
    return LayerData(
        params, rng.standard_normal((case.T, case.B, case.I)),
        0.5 * rng.standard_normal((rows, case.B, H_out)) if case.hx else None,
        0.5 * rng.standard_normal((rows, case.B, H)) if case.hx and lstm else None,
        masks, rng.standard_normal((case.T, case.B, D * H_out)),
        rng.standard_normal((rows, case.B, H_out)),
        rng.standard_normal((rows, case.B, H)) if lstm else None)


def torch_layers(case: Case, params: dict, x, h0, c0, masks):
    """The stacked layers in torch: per layer and direction, x W_ih^T + b_ih and the loop."""
    D, H_out = (2 if case.bidirectional else 1), case.H_out
    T, B = x.shape[:2]
    rows = case.layers * D
    if h0 is None:
        h0 = torch.zeros((rows, B, H_out), dtype=torch.float64)
    if c0 is None and case.mode == "LSTM":
        c0 = torch.zeros((rows, B, case.H), dtype=torch.float64)
    valid = None
    if case.lengths is not None:
        valid = (np.arange(T)[:, None] < np.array(case.lengths)[None, :])[:, :, None]
    layer_input, h_n, c_n = x, [], []
    for layer in range(case.layers):
        outputs = []
        for direction in range(D):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            row = layer * D + direction
            x_proj = layer_input @ params[f"weight_ih{sfx}"].T
            if case.bias:
                x_proj = x_proj + params[f"bias_ih{sfx}"]
            out, h, c = torch_direction(case.mode, x_proj, h0[row],
                                        None if c0 is None else c0[row],
                                        params[f"weight_hh{sfx}"], params.get(f"bias_hh{sfx}"),
                                        params.get(f"weight_hr{sfx}"), valid, direction == 1)
            outputs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_input = torch.cat(outputs, dim=-1)
        if masks is not None and layer < case.layers - 1:
            layer_input = layer_input * masks[layer]
    return layer_input, torch.stack(h_n), (torch.stack(c_n) if case.mode == "LSTM" else None)


# -- finite differences of your own forward ----------------------------------------------------
def numeric_gradient(loss: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """d loss / d array by central differences, perturbing array in place."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat, out = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        keep = flat[k]
        flat[k] = keep + FD_EPS
        up = loss()
        flat[k] = keep - FD_EPS
        down = loss()
        flat[k] = keep
        out[k] = (up - down) / (2 * FD_EPS)
    return grad


def weighted(values, weights) -> float:
    return float(sum(np.sum(np.asarray(v, dtype=np.float64) * w)
                     for v, w in zip(values, weights) if w is not None and v is not None))


# -- the student's package ---------------------------------------------------------------------
class Package:
    def __init__(self, root: Path) -> None:
        self.root = root
        for name in [k for k in sys.modules if k == "scratch" or k.startswith("scratch.")]:
            del sys.modules[name]
        sys.path.insert(0, str(root))
        importlib.invalidate_caches()
        self.scratch = importlib.import_module("scratch")
        self.modules = {}
        for name in ("functional.rnn_cell", "functional.lstm_cell", "functional.gru_cell",
                     "sequence", "recurrent"):
            self.modules[name] = importlib.import_module(f"scratch.{name}")
        origin = Path(self.scratch.__file__).resolve()
        if root.resolve() not in origin.parents:
            raise ImportError(f"scratch was imported from {origin}, not from {root}")

    def cell(self, kind: str):
        return self.modules[f"functional.{kind}_cell"]

    def cls(self, module: str, name: str):
        found = getattr(self.modules[module], name, None)
        if found is None:
            raise NotChecked(f"scratch.{module} has no {name}")
        return found


def build(cls, values: dict, what: str):
    """An instance of the NamedTuple class ``cls`` from values by field name."""
    fields = getattr(cls, "_fields", None)
    if fields is None:
        raise NotChecked(f"{cls.__name__} is not a NamedTuple")
    unknown = [f for f in fields if f not in values]
    if unknown:
        raise NotChecked(f"{cls.__name__} has fields {unknown} this check does not know, so "
                         f"it cannot build {what}")
    return cls(**{f: values[f] for f in fields})


CACHE_CLASSES = {"rnn": ("RNNStepCache", "RNNCellCache"),
                 "lstm": ("LSTMStepCache", "LSTMCellCache"),
                 "gru": ("GRUStepCache", "GRUCellCache")}


def compare_cache(name: str, cache, want: dict) -> None:
    """Every array field of the cache whose name this check knows, against torch's value."""
    if not hasattr(cache, "_fields"):
        raise Mismatch(f"{name} should be a NamedTuple, got {type(cache).__name__}")
    for f in cache._fields:
        value = getattr(cache, f)
        if f == "step":
            compare_cache(f"{name}.step", value, want)
        elif f in want and isinstance(want[f], np.ndarray):
            compare(f"{name}.{f}", value, want[f])


# -- the checks of one function on one case ----------------------------------------------------
def _step_args(case: Case, d: Data, t: int = 0):
    mode, kind = case.mode, KIND[case.mode]
    x_proj = d.x_proj[t]
    if kind == "rnn":
        return (x_proj, d.h0, d.W_hh, d.b_hh, "tanh" if mode == "RNN_TANH" else "relu")
    if kind == "lstm":
        return (x_proj, d.h0, d.c0, d.W_hh, d.b_hh, d.W_hr)
    return (x_proj, d.h0, d.W_hh, d.b_hh)


def _copy(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def torch_step_values(case: Case, d: Data, x_proj=None):
    """(h, c, cache values) of one step, in NumPy; x_proj default: d.x_proj[0]."""
    x_proj = d.x_proj[0] if x_proj is None else x_proj
    h, c, values = torch_step(case.mode, _t(x_proj), _t(d.h0), _t(d.c0), _t(d.W_hh),
                              _t(d.b_hh), _t(d.W_hr))
    return _n(h), _n(c), {k: _n(v) for k, v in values.items()}


def check_step_forward(pkg: Package, case: Case) -> None:
    if torch is None:
        raise NotChecked("a forward function is checked against torch: pip install torch")
    kind = KIND[case.mode]
    d = make_data(case)
    result = getattr(pkg.cell(kind), f"{kind}_step_forward")(*_copy(_step_args(case, d)))
    h, c, values = torch_step_values(case, d)
    lstm = kind == "lstm"
    out = unpack(result, 3 if lstm else 2, "(h, c, cache)" if lstm else "(h, cache)")
    compare("h", out[0], h)
    if lstm:
        compare("c", out[1], c)
    compare_cache("cache", out[-1], values)


def _cell_args(case: Case, d: Data):
    kind = KIND[case.mode]
    x = d.x[0]
    if kind == "rnn":
        return (x, d.h0, d.W_ih, d.W_hh, d.b_ih, d.b_hh,
                "tanh" if case.mode == "RNN_TANH" else "relu")
    if kind == "lstm":
        return (x, d.h0, d.c0, d.W_ih, d.W_hh, d.b_ih, d.b_hh, d.W_hr)
    return (x, d.h0, d.W_ih, d.W_hh, d.b_ih, d.b_hh)


def _x_proj_of_cell(d: Data) -> np.ndarray:
    x_proj = _n(_t(d.x[0]) @ _t(d.W_ih).T)
    return x_proj if d.b_ih is None else x_proj + d.b_ih


def check_cell_forward(pkg: Package, case: Case) -> None:
    if torch is None:
        raise NotChecked("a forward function is checked against torch: pip install torch")
    kind = KIND[case.mode]
    d = make_data(case)
    with cell_oracles(pkg, kind, _Oracles(pkg)):
        result = getattr(pkg.cell(kind), f"{kind}_cell_forward")(*_copy(_cell_args(case, d)))
    x_proj = _t(d.x[0]) @ _t(d.W_ih).T + (0 if d.b_ih is None else _t(d.b_ih))
    h, c, values = torch_step(case.mode, x_proj, _t(d.h0), _t(d.c0), _t(d.W_hh), _t(d.b_hh),
                              _t(d.W_hr))
    lstm = kind == "lstm"
    out = unpack(result, 3 if lstm else 2, "(h, c, cache)" if lstm else "(h, cache)")
    compare("h", out[0], _n(h))
    if lstm:
        compare("c", out[1], _n(c))
    compare_cache("cache", out[-1], {k: _n(v) for k, v in values.items()})


STEP_GRADS = {"rnn": ("dpre", "dh_prev"), "lstm": ("dgates", "dh_prev", "dc_prev"),
              "gru": ("dgi", "dgh", "dh_prev")}
CELL_GRADS = {"rnn": ("dx", "dh_prev", "dW_ih", "dW_hh", "db_ih", "db_hh"),
              "lstm": ("dx", "dh_prev", "dc_prev", "dW_ih", "dW_hh", "db_ih", "db_hh", "dW_hr"),
              "gru": ("dx", "dh_prev", "dW_ih", "dW_hh", "db_ih", "db_hh")}


def _step_cache(pkg: Package, case: Case, d: Data, kind: str):
    """The step cache: built from torch's values with your cache class (with torch), or
    your own forward's (without)."""
    if torch is not None:
        _, _, values = torch_step_values(case, d)
        values["nonlinearity"] = "tanh" if case.mode == "RNN_TANH" else "relu"
        return build(pkg.cls(f"functional.{kind}_cell", CACHE_CLASSES[kind][0]), values,
                     "the step's cache")
    forward = getattr(pkg.cell(kind), f"{kind}_step_forward")
    try:
        return forward(*_copy(_step_args(case, d)))[-1]
    except Exception as error:
        raise NotChecked(f"without torch the cache comes from your {kind}_step_forward, "
                         f"which raised {type(error).__name__}: {error}") from None


def _step_backward_args(case: Case, d: Data, kind: str, cache):
    if kind == "lstm":
        return (d.dh.copy(), d.dc.copy(), cache, d.W_hh.copy(), _copy((d.W_hr,))[0])
    return (d.dh.copy(), cache, d.W_hh.copy())


def check_step_backward(pkg: Package, case: Case) -> None:
    kind = KIND[case.mode]
    d = make_data(case)
    cache = _step_cache(pkg, case, d, kind)
    backward = getattr(pkg.cell(kind), f"{kind}_step_backward")
    names = STEP_GRADS[kind]
    got = unpack(backward(*_step_backward_args(case, d, kind, cache)), len(names),
                 "(" + ", ".join(names) + ")")
    mine = dict(zip(names, got))
    if torch is not None:
        x_proj, h_prev = _t(d.x_proj[0], True), _t(d.h0, True)
        c_prev = _t(d.c0, True)
        h, c, _ = torch_step(case.mode, x_proj, h_prev, c_prev, _t(d.W_hh), _t(d.b_hh),
                             _t(d.W_hr))
        loss = (h * _t(d.dh)).sum() + (0 if c is None else (c * _t(d.dc)).sum())
        loss.backward()
        want = {names[0]: _n(x_proj.grad), "dh_prev": _n(h_prev.grad)}
        if kind == "lstm":
            want["dc_prev"] = _n(c_prev.grad)
        if kind == "gru":
            gh = _t(d.h0) @ _t(d.W_hh).T + (0 if d.b_hh is None else _t(d.b_hh))
            gh_leaf = gh.detach().requires_grad_(True)
            h2, _, _ = torch_step(case.mode, _t(d.x_proj[0]), _t(d.h0), None, _t(d.W_hh),
                                  _t(d.b_hh), None, gh_leaf=gh_leaf)
            (h2 * _t(d.dh)).sum().backward()
            want["dgh"] = _n(gh_leaf.grad)
        for name in names:
            compare(name, mine[name], want[name], against="torch's autograd of the equations")
        return
    # without torch: central differences of your own step forward
    forward = getattr(pkg.cell(kind), f"{kind}_step_forward")
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in _step_args(case, d)]

    def loss() -> float:
        out = forward(*_copy(tuple(args)))
        return weighted(out[:-1], [d.dh, d.dc])

    against = f"central differences of your {kind}_step_forward"
    compare(names[0], mine[names[0]], numeric_gradient(loss, args[0]), FD_TOL, against)
    compare("dh_prev", mine["dh_prev"], numeric_gradient(loss, args[1]), FD_TOL, against)
    if kind == "lstm":
        compare("dc_prev", mine["dc_prev"], numeric_gradient(loss, args[2]), FD_TOL, against)
    if kind == "gru":  # dgh through the parameters it feeds: dW_hh = dgh^T h_prev, db_hh
        dgh = np.asarray(mine["dgh"])
        compare("dgh^T h_prev", dgh.T @ d.h0, numeric_gradient(loss, args[2]), FD_TOL,
                f"d/dW_hh of your {kind}_step_forward (central differences)")
        if args[3] is not None:
            compare("dgh summed over the batch", dgh.sum(axis=0),
                    numeric_gradient(loss, args[3]), FD_TOL,
                    f"d/db_hh of your {kind}_step_forward (central differences)")


def check_cell_backward(pkg: Package, case: Case) -> None:
    kind = KIND[case.mode]
    d = make_data(case)
    cell_cls = CACHE_CLASSES[kind][1]
    oracle = _Oracles(pkg) if torch is not None else None
    if oracle is not None:
        step_args = list(_step_args(case, d))
        step_args[0] = _x_proj_of_cell(d)
        step = oracle.step_forward(kind)(*_copy(tuple(step_args)))[-1]
        cache = build(pkg.cls(f"functional.{kind}_cell", cell_cls),
                      {"x": d.x[0].copy(), "W_ih": d.W_ih.copy(), "W_hh": d.W_hh.copy(),
                       "W_hr": None if d.W_hr is None else d.W_hr.copy(),
                       "has_bias": case.bias, "step": step}, "the cell's cache")
    else:
        forward = getattr(pkg.cell(kind), f"{kind}_cell_forward")
        try:
            cache = forward(*_copy(_cell_args(case, d)))[-1]
        except Exception as error:
            raise NotChecked(f"without torch the cache comes from your {kind}_cell_forward, "
                             f"which raised {type(error).__name__}: {error}") from None
    backward = getattr(pkg.cell(kind), f"{kind}_cell_backward")
    upstream = (d.dh.copy(),) + ((d.dc.copy(),) if kind == "lstm" else ())
    with cell_oracles(pkg, kind, oracle):
        grads = backward(*upstream, cache)
    names = CELL_GRADS[kind]
    arg_index = {"rnn": dict(dx=0, dh_prev=1, dW_ih=2, dW_hh=3, db_ih=4, db_hh=5),
                 "lstm": dict(dx=0, dh_prev=1, dc_prev=2, dW_ih=3, dW_hh=4, db_ih=5, db_hh=6,
                              dW_hr=7),
                 "gru": dict(dx=0, dh_prev=1, dW_ih=2, dW_hh=3, db_ih=4, db_hh=5)}[kind]
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in _cell_args(case, d)]
    if torch is not None:
        leaves = [_t(a, True) if isinstance(a, np.ndarray) else a for a in args]
        if kind == "rnn":
            x, h_prev, W_ih, W_hh, b_ih, b_hh, _ = leaves
            W_hr = c_prev = None
        elif kind == "lstm":
            x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh, W_hr = leaves
        else:
            x, h_prev, W_ih, W_hh, b_ih, b_hh = leaves
            W_hr = c_prev = None
        x_proj = x @ W_ih.T + (0 if b_ih is None else b_ih)
        h, c, _ = torch_step(case.mode, x_proj, h_prev, c_prev, W_hh, b_hh, W_hr)
        loss = (h * _t(d.dh)).sum() + (0 if c is None else (c * _t(d.dc)).sum())
        loss.backward()
        for i, name in enumerate(names):
            leaf = leaves[arg_index[name]]
            compare(name, field(grads, name, i), None if leaf is None else _n(leaf.grad),
                    against="torch's autograd of the equations")
        return
    forward = getattr(pkg.cell(kind), f"{kind}_cell_forward")

    def loss() -> float:
        out = forward(*_copy(tuple(args)))
        return weighted(out[:-1], [d.dh, d.dc])

    for i, name in enumerate(names):
        arg = args[arg_index[name]]
        want = None if arg is None else numeric_gradient(loss, arg)
        compare(name, field(grads, name, i), want, FD_TOL,
                f"central differences of your {kind}_cell_forward")


# -- the loop over time: your step functions replaced by torch's answers ------------------------
class _Oracles:
    """Stand-ins, in torch, for functions a check does not grade (the grader runs its
    reference there). Each records what its backward needs under the id of what it returns."""

    def __init__(self, pkg: Package) -> None:
        self.pkg = pkg
        self.saved: dict[int, tuple] = {}

    def step_forward(self, kind: str):
        cls = self.pkg.cls(f"functional.{kind}_cell", CACHE_CLASSES[kind][0])

        def forward(x_proj, h_prev, *args, out=None, cache_out=None):
            if kind == "rnn":
                c_prev, (W_hh, b_hh, nonlinearity), W_hr = None, args, None
                mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
            elif kind == "lstm":
                c_prev, W_hh, b_hh, W_hr = (list(args) + [None])[:4]
                mode = "LSTM"
            else:
                (W_hh, b_hh), c_prev, W_hr, mode = args, None, None, "GRU"
            h, c, values = torch_step(mode, _t(x_proj), _t(h_prev), _t(c_prev), _t(W_hh),
                                      _t(b_hh), _t(W_hr))
            values = {k: _n(v) for k, v in values.items()}
            values["nonlinearity"] = "tanh" if mode == "RNN_TANH" else "relu"
            h = _n(h)
            if out is not None:
                out[...] = h
                h = out
            if cache_out is not None:
                for name in cache_out._fields:
                    target = getattr(cache_out, name)
                    if target is not None and name in values:
                        target[...] = values[name]
                        values[name] = target
            if kind == "rnn":
                values["h"] = h
            elif kind == "lstm" and W_hr is None:
                values["h_full"] = h
            cache = build(cls, values, "a step's cache")
            self.saved[id(cache)] = (cache, mode, np.array(x_proj, copy=True),
                                     np.array(h_prev, copy=True),
                                     None if c_prev is None else np.array(c_prev, copy=True),
                                     W_hh, b_hh, W_hr)
            if kind == "lstm":
                return h, values["c"], cache
            return h, cache

        return forward

    def step_backward(self, kind: str):
        def backward(dh, *args, out=None):
            if kind == "lstm":
                dc, cache = args[0], args[1]
            else:
                dc, cache = None, args[0]
            if id(cache) not in self.saved:
                raise RuntimeError(f"{kind}_step_backward was given a cache that "
                                   f"{kind}_step_forward did not return")
            _, mode, x_proj, h_prev, c_prev, W_hh, b_hh, W_hr = self.saved[id(cache)]
            xp, hp, cp = _t(x_proj, True), _t(h_prev, True), _t(c_prev, True)
            h, c, _ = torch_step(mode, xp, hp, cp, _t(W_hh), _t(b_hh), _t(W_hr))
            loss = (h * _t(dh)).sum() + (0 if dc is None else (c * _t(dc)).sum())
            loss.backward()
            dx_proj = _n(xp.grad)
            if kind == "gru":
                gh = _t(h_prev) @ _t(W_hh).T + (0 if b_hh is None else _t(b_hh))
                gh_leaf = gh.detach().requires_grad_(True)
                h2, _, _ = torch_step(mode, _t(x_proj), _t(h_prev), None, _t(W_hh), _t(b_hh),
                                      None, gh_leaf=gh_leaf)
                (h2 * _t(dh)).sum().backward()
                dgh = _n(gh_leaf.grad)
                if out is not None:
                    out[0][...], out[1][...] = dx_proj, dgh
                    dx_proj, dgh = out
                return dx_proj, dgh, _n(hp.grad)
            if out is not None:
                out[...] = dx_proj
                dx_proj = out
            if kind == "lstm":
                return dx_proj, _n(hp.grad), _n(cp.grad)
            return dx_proj, _n(hp.grad)

        return backward

    def direction_forward(self):
        def forward(mode, x_proj, h0, c0, weights, valid=None, reverse=False, **_ignored):
            leaves = [_t(a, True) for a in (x_proj, h0, c0, weights.W_hh, weights.b_hh,
                                            weights.W_hr)]
            output, h_n, c_n = torch_direction(mode, *leaves, valid, reverse)
            cache = _DirectionCache(mode, leaves, output, h_n, c_n)
            self.saved[id(cache)] = (cache,)
            return _n(output), _n(h_n), _n(c_n), cache

        return forward

    def direction_backward(self):
        grads_cls = getattr(self.pkg.modules["sequence"], "DirectionGrads", None)

        def backward(doutput, dh_n, dc_n, cache, weights):
            if not isinstance(cache, _DirectionCache):
                raise RuntimeError("direction_backward was given a cache that "
                                   "direction_forward did not return")
            outs = [cache.output, cache.h_n] + ([cache.c_n] if cache.c_n is not None else [])
            upstream = [_t(doutput), _t(dh_n)] + (
                [_t(dc_n) if dc_n is not None else torch.zeros_like(cache.c_n)]
                if cache.c_n is not None else [])
            wanted = [leaf for leaf in cache.leaves if leaf is not None]
            grads = torch.autograd.grad(outs, wanted, upstream, retain_graph=True,
                                        allow_unused=True)
            by_leaf = {id(leaf): _n(g) if g is not None else np.zeros(tuple(leaf.shape))
                       for leaf, g in zip(wanted, grads)}

            def of(i):
                leaf = cache.leaves[i]
                return None if leaf is None else by_leaf[id(leaf)]

            values = {"dW_hh": of(3), "db_hh": of(4), "dW_hr": of(5)}
            rec = (build(grads_cls, values, "DirectionGrads") if grads_cls is not None
                   else _Grads(**values))
            return of(0), of(1), of(2), rec

        return backward

    def accumulate(self):
        def accumulate(module, layer, direction, X, dx_proj, rec):
            sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
            params = dict(module.named_parameters())
            W_ih = _t(params[f"weight_ih{sfx}"], True)
            b_ih = _t(params.get(f"bias_ih{sfx}"), True)
            x_proj = _t(X) @ W_ih.T + (0 if b_ih is None else b_ih)
            x_proj.backward(_t(dx_proj))
            grads = module._grads
            grads[f"weight_ih{sfx}"] += _n(W_ih.grad)
            grads[f"weight_hh{sfx}"] += field(rec, "dW_hh", 0)
            if b_ih is not None:
                grads[f"bias_ih{sfx}"] += _n(b_ih.grad)
                grads[f"bias_hh{sfx}"] += field(rec, "db_hh", 1)
            if f"weight_hr{sfx}" in params:
                grads[f"weight_hr{sfx}"] += field(rec, "dW_hr", 2)

        return accumulate


class _DirectionCache(NamedTuple):
    mode: str
    leaves: list
    output: Any
    h_n: Any
    c_n: Any


class _Grads(NamedTuple):
    dW_hh: Any
    db_hh: Any
    dW_hr: Any


@contextlib.contextmanager
def replaced(obj, names: dict):
    """Set attributes of obj for the duration (the module-level names a function calls)."""
    old = {name: getattr(obj, name) for name in names if hasattr(obj, name)}
    for name, value in names.items():
        setattr(obj, name, value)
    try:
        yield
    finally:
        for name in names:
            if name in old:
                setattr(obj, name, old[name])
            else:
                delattr(obj, name)


def cell_oracles(pkg: Package, kind: str, oracle: _Oracles | None):
    """Your cell function with torch's step functions in place of yours."""
    if oracle is None:
        return contextlib.nullcontext()
    return replaced(pkg.cell(kind), {f"{kind}_step_forward": oracle.step_forward(kind),
                                     f"{kind}_step_backward": oracle.step_backward(kind)})


def step_oracles(pkg: Package):
    """Your sequence loop with torch's step functions in place of yours."""
    if torch is None:
        return contextlib.nullcontext()
    oracle = _Oracles(pkg)
    names = {}
    for kind in ("rnn", "lstm", "gru"):
        names[f"{kind}_step_forward"] = oracle.step_forward(kind)
        names[f"{kind}_step_backward"] = oracle.step_backward(kind)
    return replaced(pkg.modules["sequence"], names)


def _direction_call(case: Case, d: Data, pkg: Package):
    weights_cls = pkg.cls("sequence", "DirectionWeights")
    weights = build(weights_cls, {"W_hh": d.W_hh.copy(), "b_hh": _copy((d.b_hh,))[0],
                                  "W_hr": _copy((d.W_hr,))[0]}, "DirectionWeights")
    args = (case.mode, d.x_proj.copy(), d.h0.copy(), _copy((d.c0,))[0], weights)
    kwargs = {"valid": None if d.valid is None else d.valid.copy(), "reverse": case.reverse}
    return args, kwargs, weights


def check_direction_forward(pkg: Package, case: Case) -> None:
    if torch is None:
        raise NotChecked("a forward function is checked against torch: pip install torch")
    d = make_data(case)
    args, kwargs, _ = _direction_call(case, d, pkg)
    with step_oracles(pkg):
        result = pkg.modules["sequence"].direction_forward(*args, **kwargs)
    out = unpack(result, 4, "(output, h_n, c_n, cache)")
    output, h_n, c_n = torch_direction(case.mode, _t(d.x_proj), _t(d.h0), _t(d.c0), _t(d.W_hh),
                                       _t(d.b_hh), _t(d.W_hr), d.valid, case.reverse)
    compare("output", out[0], _n(output))
    compare("h_n", out[1], _n(h_n))
    compare("c_n", out[2], _n(c_n))


def check_direction_backward(pkg: Package, case: Case) -> None:
    d = make_data(case)
    seq = pkg.modules["sequence"]
    args, kwargs, weights = _direction_call(case, d, pkg)
    with step_oracles(pkg):
        try:
            cache = seq.direction_forward(*args, **kwargs)[-1]
        except Exception as error:
            raise NotChecked(f"the cache comes from your direction_forward, which raised "
                             f"{type(error).__name__}: {error}") from None
        dc_n = None if d.dc is None else d.dc.copy()
        result = seq.direction_backward(d.dout.copy(), d.dh.copy(), dc_n, cache, weights)
    dx_proj, dh0, dc0, grads = unpack(result, 4, "(dx_proj, dh0, dc0, grads)")
    names = ("dW_hh", "db_hh", "dW_hr")
    if torch is not None:
        leaves = [_t(a, True) for a in (d.x_proj, d.h0, d.c0, d.W_hh, d.b_hh, d.W_hr)]
        output, h_n, c_n = torch_direction(case.mode, *leaves, d.valid, case.reverse)
        loss = (output * _t(d.dout)).sum() + (h_n * _t(d.dh)).sum() + (
            0 if c_n is None else (c_n * _t(d.dc)).sum())
        loss.backward()
        want = [None if leaf is None else _n(leaf.grad) for leaf in leaves]
        against = "torch's autograd of the equations"
        tol = TOL
    else:
        base = [a.copy() if a is not None else None
                for a in (d.x_proj, d.h0, d.c0, d.W_hh, d.b_hh, d.W_hr)]

        def loss() -> float:
            w = build(type(weights), {"W_hh": base[3], "b_hh": base[4], "W_hr": base[5]},
                      "DirectionWeights")
            out = seq.direction_forward(case.mode, base[0].copy(), base[1], base[2], w,
                                        valid=d.valid, reverse=case.reverse)
            return weighted(out[:3], [d.dout, d.dh, d.dc])

        want = [None if a is None else numeric_gradient(loss, a) for a in base]
        against, tol = "central differences of your direction_forward", FD_TOL
    compare("dx_proj", dx_proj, want[0], tol, against)
    compare("dh0", dh0, want[1], tol, against)
    compare("dc0", dc0, want[2], tol, against)
    for i, name in enumerate(names):
        compare(f"grads.{name}", field(grads, name, i), want[3 + i], tol, against)


# -- a layer: your loop over time replaced by torch's answers -----------------------------------
CLASS_OF = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def _layer_module(pkg: Package, case: Case, data: LayerData):
    kwargs: dict = dict(num_layers=case.layers, bias=case.bias,
                        bidirectional=case.bidirectional, dropout=case.dropout)
    if case.mode == "LSTM":
        kwargs["proj_size"] = case.P
    if case.mode in ("RNN_TANH", "RNN_RELU"):
        kwargs["nonlinearity"] = "tanh" if case.mode == "RNN_TANH" else "relu"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = getattr(pkg.scratch, CLASS_OF[case.mode])(case.I, case.H, **kwargs)
    module.load_state_dict({k: v.copy() for k, v in data.params.items()})
    module.train(bool(case.dropout))
    module.zero_grad()
    return module


def _layer_forward(module, case: Case, data: LayerData):
    hx = None
    if case.hx:
        hx = (data.h0.copy(), data.c0.copy()) if case.mode == "LSTM" else data.h0.copy()
    kwargs = {"lengths": None if case.lengths is None else list(case.lengths)}
    if data.masks is not None:
        kwargs["dropout_masks"] = [m.copy() for m in data.masks]
    return module(data.x.copy(), hx, **kwargs)


def _layer_backward(module, case: Case, data: LayerData):
    grad_state = data.dh_n.copy()
    if case.mode == "LSTM":
        grad_state = (data.dh_n.copy(), data.dc_n.copy())
    return module.backward(data.dout.copy(), grad_state)


def direction_oracles(pkg: Package, accumulate: bool):
    if torch is None:
        return contextlib.nullcontext()
    oracle = _Oracles(pkg)
    stack = contextlib.ExitStack()
    stack.enter_context(replaced(pkg.modules["recurrent"], {
        "direction_forward": oracle.direction_forward(),
        "direction_backward": oracle.direction_backward()}))
    if accumulate:
        base = pkg.modules["recurrent"].RNNBase
        stack.enter_context(replaced(base, {"_accumulate": oracle.accumulate()}))
    return stack


def torch_layer_reference(case: Case, data: LayerData):
    params = {k: _t(v, True) for k, v in data.params.items()}
    x, h0, c0 = _t(data.x, True), _t(data.h0, True), _t(data.c0, True)
    masks = None if data.masks is None else [_t(m) for m in data.masks]
    output, h_n, c_n = torch_layers(case, params, x, h0, c0, masks)
    loss = (output * _t(data.dout)).sum() + (h_n * _t(data.dh_n)).sum() + (
        0 if c_n is None else (c_n * _t(data.dc_n)).sum())
    loss.backward()
    return output, h_n, c_n, x, h0, c0, params


def _split_state(case: Case, state):
    if case.mode == "LSTM":
        if state is None:
            return None, None
        pair = unpack(state, 2, "a pair (h, c) for the LSTM")
        return pair[0], pair[1]
    return state, None


def check_layer_forward(pkg: Package, case: Case) -> None:
    if torch is None:
        raise NotChecked("a forward function is checked against torch: pip install torch")
    data = make_layer_data(case)
    module = _layer_module(pkg, case, data)
    with direction_oracles(pkg, accumulate=False):
        result = _layer_forward(module, case, data)
    output, state = unpack(result, 2, "(output, h_n)")
    h_n, c_n = _split_state(case, state)
    want_out, want_h, want_c, *_ = torch_layer_reference(case, data)
    compare("output", output, _n(want_out))
    compare("h_n", h_n, _n(want_h))
    compare("c_n", c_n, _n(want_c))


def _check_layer_gradients(pkg: Package, case: Case, accumulate_oracle: bool,
                           params_only: bool = False) -> None:
    data = make_layer_data(case)
    module = _layer_module(pkg, case, data)
    with direction_oracles(pkg, accumulate=accumulate_oracle):
        try:
            _layer_forward(module, case, data)
        except Exception as error:
            raise NotChecked(f"it needs your RNNBase.forward, which raised "
                             f"{type(error).__name__}: {error}") from None
        grad_input, grad_hx = unpack(_layer_backward(module, case, data), 2,
                                     "(grad_input, grad_hx)")
    grads = module.grads
    if torch is not None:
        _, _, _, x, h0, c0, params = torch_layer_reference(case, data)
        want_input = _n(x.grad)
        want_h0 = None if h0 is None else _n(h0.grad)
        want_c0 = None if c0 is None else _n(c0.grad)
        want_params = {k: _n(v.grad) for k, v in params.items()}
        against, tol = "torch's autograd of the equations", TOL
    else:
        probe = _layer_module(pkg, case, data)
        values = dict(probe.named_parameters())
        inputs = {"x": data.x.copy(), "h0": None if data.h0 is None else data.h0.copy(),
                  "c0": None if data.c0 is None else data.c0.copy()}

        def loss() -> float:
            probe.load_state_dict(values)
            hx = None
            if inputs["h0"] is not None:
                hx = (inputs["h0"], inputs["c0"]) if case.mode == "LSTM" else inputs["h0"]
            kwargs = {"lengths": None if case.lengths is None else list(case.lengths)}
            if data.masks is not None:
                kwargs["dropout_masks"] = data.masks
            out, state = probe(inputs["x"].copy(), hx, **kwargs)
            h_n, c_n = state if case.mode == "LSTM" else (state, None)
            return weighted([out, h_n, c_n], [data.dout, data.dh_n, data.dc_n])

        values = {k: np.array(v, copy=True) for k, v in values.items()}
        want_params = {k: numeric_gradient(loss, v) for k, v in values.items()}
        want_input = numeric_gradient(loss, inputs["x"])
        want_h0 = None if inputs["h0"] is None else numeric_gradient(loss, inputs["h0"])
        want_c0 = None if inputs["c0"] is None else numeric_gradient(loss, inputs["c0"])
        against, tol = "central differences of your forward", FD_TOL
    if not params_only:
        compare("grad_input", grad_input, want_input, tol, against)
        h, c = _split_state(case, grad_hx)
        compare("grad_h0", h, want_h0, tol, against)
        compare("grad_c0", c, want_c0, tol, against)
    for name, want in want_params.items():
        compare(f"grads[{name!r}]", grads.get(name), want, tol, against)


def check_layer_backward(pkg: Package, case: Case) -> None:
    _check_layer_gradients(pkg, case, accumulate_oracle=True)


def check_accumulate(pkg: Package, case: Case) -> None:
    if torch is None:
        raise NotChecked("checked against torch: pip install torch (RNNBase.backward's check "
                         "covers the gradients it adds)")
    data = make_layer_data(case)
    module = _layer_module(pkg, case, data)
    D = 2 if case.bidirectional else 1
    rng = np.random.default_rng(case.seed + 99)
    grads_cls = getattr(pkg.modules["sequence"], "DirectionGrads", _Grads)
    want = {k: np.zeros_like(v) for k, v in data.params.items()}
    for layer in range(case.layers):
        for direction in range(D):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            W_ih = data.params[f"weight_ih{sfx}"]
            G_H, width = W_ih.shape
            X = rng.standard_normal((case.T, case.B, width))
            dx_proj = rng.standard_normal((case.T, case.B, G_H))
            rec_values = {"dW_hh": rng.standard_normal(data.params[f"weight_hh{sfx}"].shape),
                          "db_hh": rng.standard_normal(G_H) if case.bias else None,
                          "dW_hr": rng.standard_normal((case.P, case.H)) if case.P else None}
            rec = build(grads_cls, rec_values, "DirectionGrads")
            module._accumulate(layer, direction, X.copy(), dx_proj.copy(), rec)
            tW, tb = _t(W_ih, True), _t(data.params.get(f"bias_ih{sfx}"), True)
            (_t(X) @ tW.T + (0 if tb is None else tb)).backward(_t(dx_proj))
            want[f"weight_ih{sfx}"] += _n(tW.grad)
            want[f"weight_hh{sfx}"] += rec_values["dW_hh"]
            if case.bias:
                want[f"bias_ih{sfx}"] += _n(tb.grad)
                want[f"bias_hh{sfx}"] += rec_values["db_hh"]
            if case.P:
                want[f"weight_hr{sfx}"] += rec_values["dW_hr"]
    grads = module.grads
    for name, value in want.items():
        compare(f"grads[{name!r}]", grads.get(name), value,
                against="torch's autograd of x_proj = X W_ih^T + b_ih, and rec")


CHECKS: dict[str, Callable[[Package, Case], None]] = {
    **{f"{k}_step_forward": check_step_forward for k in ("rnn", "lstm", "gru")},
    **{f"{k}_cell_forward": check_cell_forward for k in ("rnn", "lstm", "gru")},
    **{f"{k}_step_backward": check_step_backward for k in ("rnn", "lstm", "gru")},
    **{f"{k}_cell_backward": check_cell_backward for k in ("rnn", "lstm", "gru")},
    "direction_forward": check_direction_forward,
    "direction_backward": check_direction_backward,
    "RNNBase.forward": check_layer_forward,
    "RNNBase.backward": check_layer_backward,
    "RNNBase._accumulate": check_accumulate,
}


# -- running -----------------------------------------------------------------------------------
@dataclass
class Verdict:
    function: str
    status: str  # PASS, FAIL, SKIP
    cases: int = 0
    problem: str = ""
    case: str = ""


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    here = Path(__file__).resolve()
    theirs = [f for f in frames if Path(f.filename).resolve() != here]
    if not theirs:
        return ""
    f = theirs[-1]
    return f" (at {f.filename} line {f.lineno}" + (f": `{f.line}`)" if f.line else ")")


def check_function(pkg: Package, function: str, cases: list[Case]) -> Verdict:
    run = CHECKS[function]
    level = level_of(function)
    count = 0
    for case in cases:
        if case.level != level:  # an item's cases for the other functions it grades
            continue
        try:
            run(pkg, case)
        except NotChecked as why:
            return Verdict(function, "SKIP", count, str(why))
        except Mismatch as wrong:
            return Verdict(function, "FAIL", count, f"{function} returned {wrong}",
                           case.describe(level))
        except NotImplementedError as error:
            return Verdict(function, "FAIL", count,
                           f"{function} is not written yet: it raises NotImplementedError"
                           + _where(error), case.describe(level))
        except Exception as error:
            return Verdict(function, "FAIL", count,
                           f"{function} raised {type(error).__name__}: {error}" + _where(error),
                           case.describe(level))
        count += 1
    if count == 0:
        return Verdict(function, "SKIP", 0, "no case of this item applies to it")
    return Verdict(function, "PASS", count)


def load_items() -> list[dict]:
    """The rubric's items, as the handout ships them (parity/check_items.json beside this
    file), or from the project's grading package."""
    shipped = Path(__file__).with_name("check_items.json")
    if shipped.is_file():
        return json.loads(shipped.read_text())
    from parity.grading.items import ITEMS_BY_ID
    from parity.grading.rubric import default_rubric

    return [{"id": e.id, "title": ITEMS_BY_ID[e.id].title,
             "grades": list(ITEMS_BY_ID[e.id].grades)}
            for e in default_rubric().graded if e.visibility == "visible"]


def run_check(root: Path, only: list[str] | None = None, out=sys.stdout) -> int:
    start = time.perf_counter()
    how = ("torch " + torch.__version__ + ": forward against torch's equations, backward "
           "against torch's autograd" if torch is not None else
           "torch is not installed: forward functions are not checked, backward functions "
           "against central differences of your own forward (pip install torch for the rest)")
    print(f"parity check: {root}\n({how})", file=out)
    try:
        pkg = Package(root)
    except Exception as error:
        print(f"\nFAIL: your scratch package does not import: {type(error).__name__}: "
              f"{error}{_where(error)}", file=out)
        return 1
    verdicts: list[tuple[str, Verdict]] = []
    for item in load_items():
        cases_of = ITEM_CASES.get(item["id"])
        functions = [f for f in item["grades"] if only is None or f in only]
        if not functions:
            continue
        print(f"\n{item['title']}", file=out)
        for function in functions:
            if cases_of is None or function not in CHECKS:
                verdict = Verdict(function, "SKIP", 0, "this check has no cases for it")
            else:
                verdict = check_function(pkg, function, cases_of())
            verdicts.append((item["title"], verdict))
            counted = f"({verdict.cases} cases)" if verdict.status == "PASS" else ""
            print(f"  {verdict.status}  {function}  {counted}".rstrip(), file=out)
            if verdict.status == "FAIL":
                print(f"        {verdict.problem}", file=out)
                print(f"        Smallest failing case: {verdict.case}", file=out)
            elif verdict.status == "SKIP":
                print(f"        not checked: {verdict.problem}", file=out)
    failed = [(t, v) for t, v in verdicts if v.status == "FAIL"]
    passed = sum(v.status == "PASS" for _, v in verdicts)
    skipped = sum(v.status == "SKIP" for _, v in verdicts)
    print(f"\n{passed} passed, {len(failed)} failed, {skipped} not checked "
          f"({time.perf_counter() - start:.1f} s)", file=out)
    if failed:
        print("failing: " + "; ".join(f"{v.function} ({t})" for t, v in failed), file=out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity check",
        description="Check each function you write against torch's equations (forward) and "
                    "torch's autograd (backward; finite differences of your forward without "
                    "torch), item by item as the rubric grades them.")
    p.add_argument("dir", nargs="?", default=".", type=Path,
                   help="the directory holding your scratch/ package (default: here)")
    p.add_argument("--only", default=None,
                   help="comma-separated function names (e.g. gru_cell_backward)")
    args = p.parse_args(argv)
    root = args.dir.resolve()
    if not (root / "scratch" / "__init__.py").is_file():
        print(f"error: {root} holds no scratch/ package (scratch/__init__.py); run this in "
              "the handout's directory or give it", file=sys.stderr)
        return 2
    only = None if args.only is None else [s.strip() for s in args.only.split(",")]
    return run_check(root, only)


if __name__ == "__main__":
    sys.exit(main())
