"""Parity of every other public function: cells, cell functions, layers, losses, clipping,
optimizers. Each is a named *group*, run like a mode in parity.runner: pinned cases, then
Hypothesis, the first failure shrunk and reported with the group's name.

    group                 what is compared with torch
    RNNCell, LSTMCell,    the cell modules against torch.nn.*Cell: output, the gradients of
    GRUCell               the input and of hx, every parameter's gradient (and after a second
                          backward without zero_grad); batched and unbatched, with and without
                          hx and bias, tanh and relu
    rnn_cell_forward ...  scratch.functional's *_cell_forward (the new state) and
    ... *_cell_backward   *_cell_backward (every field of its grads, the cache coming from the
                          implementation's own forward) against torch autograd of the same
                          equations (torch_impl.equations)
    Linear, Embedding     the layers against torch.nn.Linear / Embedding (padding_idx too)
    MSELoss,              every reduction (and ignore_index, one example or a batch), the
    CrossEntropyLoss      loss and the gradient of the input, with an upstream gradient
    clip_grad_norm_,      in place on a Linear's gradients: the returned norm and the clipped
    clip_grad_value_      gradients, every norm type, an infinite gradient
    SGD, Adam, AdamW      1 to 3 steps on a Linear's parameters with every option

A case is plain data (``UnitCase``: the group, the dtype, a seed and the drawn options), its
arrays drawn from NumPy's generator with that seed, so ``--reproduce`` reruns it from its JSON.
An implementation that lacks what a group needs (``impl.Embedding``, ``impl.functional``...)
has that group skipped, and the run says so by name.
"""

from __future__ import annotations

import json
import math
import traceback
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from parity import spec, tolerances
from parity.compare import TensorCheck, compare_tensor, report_tail
from parity.strategies import Profile
from torch_impl import equations

TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}


# -- a case ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitCase:
    group: str
    options: tuple  # sorted (name, value) pairs, JSON values
    dtype: str = "float64"
    seed: int = 0

    @property
    def opts(self) -> dict:
        return dict(self.options)

    def to_json(self) -> str:
        return json.dumps({"group": self.group, "dtype": self.dtype, "seed": self.seed,
                           **self.opts}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> UnitCase:
        fields = json.loads(text)
        group = fields.pop("group")
        if group not in GROUPS_BY_NAME:
            raise ValueError(f"unknown group {group!r}; known: {sorted(GROUPS_BY_NAME)}")
        dtype, seed = fields.pop("dtype", "float64"), fields.pop("seed", 0)
        return make_case(group, fields, dtype, seed)

    def describe(self) -> str:
        words = ", ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.group}: {words}, {self.dtype}, seed {self.seed}"


def make_case(group: str, options: dict, dtype: str, seed: int) -> UnitCase:
    def plain(v):
        return list(v) if isinstance(v, tuple) else v

    return UnitCase(group, tuple(sorted((k, plain(v)) for k, v in options.items())), dtype,
                    int(seed))


@dataclass
class UnitResult:
    case: UnitCase
    impl: str
    checks: list[TensorCheck] = field(default_factory=list)
    crash: str | None = None
    story: list[str] = field(default_factory=list)

    non_finite_reference = False

    @property
    def failures(self) -> list[TensorCheck]:
        return [c for c in self.checks if not c.passed]

    @property
    def passed(self) -> bool:
        return self.crash is None and not self.failures and bool(self.checks)

    def reproduce_command(self) -> str:
        import shlex

        impl = "" if self.impl == "scratch" else f" --impl {shlex.quote(self.impl)}"
        return f"python -m parity{impl} --reproduce {shlex.quote(self.case.to_json())}"

    def report(self, limit: int = 8) -> str:
        lines = [f"group: {self.case.group}"]
        if self.crash is not None:
            lines.append(f"the implementation raised an error: {self.crash}")
        failures = self.failures
        if failures:
            lines.append("diverged from torch: " + ", ".join(c.name for c in failures))
            lines += ["  " + c.describe() for c in failures[:limit]]
        if not self.checks and self.crash is None:
            lines.append("nothing was compared")
        tol = tolerances.tolerance(self.case.dtype, 1, 1)
        lines.append(f"criterion: |impl - torch| <= {tol:.3g} * max(1, max|torch|)  "
                     f"({self.case.dtype}, one step)")
        return "\n".join(lines + report_tail(self))


class _Stage:
    """What the implementation is doing, for a crash report."""

    def __init__(self) -> None:
        self.now = "building"

    def __call__(self, words: str) -> None:
        self.now = words


# -- helpers -----------------------------------------------------------------------------------
def _rng(case: UnitCase) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(case.group.encode()), case.seed])


def _arr(a, case: UnitCase) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).astype(case.dtype)


def _t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a).requires_grad_(grad)


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()


def _tol(case: UnitCase) -> float:
    return tolerances.tolerance(case.dtype, 1, 1)


def _twice(stage: _Stage, mine, params: dict, forward, backward):
    """``params`` loaded into ``mine``, then forward() and backward() twice without
    zero_grad(): (forward's result, backward's, the grads after one and after two)."""
    stage("load_state_dict()")
    mine.load_state_dict({k: v.copy() for k, v in params.items()})
    mine.zero_grad()
    stage("forward()")
    y = forward()
    stage("backward()")
    back = backward()
    grads = {k: np.array(v, copy=True) for k, v in mine.grads.items()}
    stage("a second forward() and backward() without zero_grad()")
    forward()
    backward()
    return y, back, grads, {k: np.array(v, copy=True) for k, v in mine.grads.items()}


class _Checks:
    def __init__(self, case: UnitCase) -> None:
        self.tol = _tol(case)
        self.list: list[TensorCheck] = []

    def add(self, name: str, impl, ref, quantity: str = "value") -> None:
        if ref is None:
            check = TensorCheck(name, quantity, self.tol)
            if impl is not None:
                check.problem = f"returned {type(impl).__name__}, torch has None here"
            self.list.append(check)
            return
        if isinstance(impl, (float, int, np.floating)) and not isinstance(impl, bool):
            impl = np.asarray(impl, dtype=ref.dtype)
        if isinstance(impl, np.ndarray) and impl.ndim == 0 and ref.ndim == 0:
            impl = impl.astype(ref.dtype) if impl.dtype.kind == "f" else impl
        if not np.all(np.isfinite(ref)):
            self.list.append(_compare_non_finite(name, quantity, impl, ref, self.tol))
            return
        self.list.append(compare_tensor(name, quantity, impl, ref, self.tol))


def _compare_non_finite(name, quantity, impl, ref, tol) -> TensorCheck:
    """Where torch is not finite the implementation must be the same (NaN where NaN, the same
    infinity); elsewhere the usual criterion."""
    check = TensorCheck(name, quantity, tol)
    if not isinstance(impl, np.ndarray) or impl.shape != ref.shape:
        check.problem = f"got {type(impl).__name__} {getattr(impl, 'shape', '')}, torch's " \
                        f"shape is {ref.shape}"
        return check
    a, b = impl.astype(np.float64), ref.astype(np.float64)
    same = (np.isnan(a) & np.isnan(b)) | (np.isinf(b) & (a == b))
    odd = ~np.isfinite(b) & ~same
    if odd.any() or np.any(~np.isfinite(a) & np.isfinite(b)):
        where = np.argwhere(odd | (~np.isfinite(a) & np.isfinite(b)))[0]
        i = tuple(int(k) for k in where)
        check.problem = f"at index {list(i)} the implementation has {a[i]}, torch {b[i]}"
        return check
    fin = np.isfinite(b)
    if fin.any():
        sub = compare_tensor(name, quantity, a[fin], b[fin], tol)
        sub.abs_index = ()
        return sub
    return check


def _field(result, name: str, index: int):
    """A named field of a returned NamedTuple (by position when it has no names)."""
    if hasattr(result, "_fields"):
        return getattr(result, name)
    return result[index]


# -- the cell modules --------------------------------------------------------------------------


def _draw_cell(draw, profile: Profile, group: str) -> dict:
    top = min(profile.max_size, 6)
    o = {"input_size": draw(st.integers(1, top), "input_size"),
         "hidden_size": draw(st.integers(1, top), "hidden_size"),
         "batch": draw(st.integers(1, min(profile.max_batch, 4)), "batch (B)"),
         "unbatched": draw(st.sampled_from([False, False, True]), "unbatched"),
         "hx": draw(st.booleans(), "hx given"),
         "bias": draw(st.booleans(), "bias")}
    if group == "RNNCell":
        o["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]), "nonlinearity")
    if group == "LSTMCell":
        o["grad"] = draw(st.sampled_from(["both", "h", "c"]), "upstream gradient of (h, c)")
    if o["unbatched"]:
        o["batch"] = 1
    return o


def _cell_params(case: UnitCase) -> dict[str, np.ndarray]:
    o, rng = case.opts, _rng(case)
    G, H, In = spec.mode_named(case.group).gates, o["hidden_size"], o["input_size"]
    k = 1.0 / math.sqrt(H)
    params = {"weight_ih": rng.uniform(-k, k, (G * H, In)),
              "weight_hh": rng.uniform(-k, k, (G * H, H))}
    if o["bias"]:
        params["bias_ih"] = rng.uniform(-k, k, G * H)
        params["bias_hh"] = rng.uniform(-k, k, G * H)
    return {n: _arr(v, case) for n, v in params.items()}


def run_cell_module(impl: ModuleType, case: UnitCase, stage: _Stage) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    params = _cell_params(case)
    B, H, In = o["batch"], o["hidden_size"], o["input_size"]
    lead = () if o["unbatched"] else (B,)
    x = _arr(rng.standard_normal(lead + (In,)), case)
    lstm = case.group == "LSTMCell"
    h0 = _arr(rng.standard_normal(lead + (H,)) * 0.5, case) if o["hx"] else None
    c0 = _arr(rng.standard_normal(lead + (H,)) * 0.5, case) if o["hx"] and lstm else None
    gh = _arr(rng.standard_normal(lead + (H,)), case)
    gc = _arr(rng.standard_normal(lead + (H,)), case) if lstm else None
    if lstm and o["grad"] == "h":
        gc = None
    if lstm and o["grad"] == "c":
        gh = None

    # torch
    kwargs = dict(bias=o["bias"], dtype=TORCH_DTYPE[case.dtype])
    if case.group == "RNNCell":
        ref = nn.RNNCell(In, H, nonlinearity=o["nonlinearity"], **kwargs)
    else:
        ref = getattr(nn, case.group)(In, H, **kwargs)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.copy_(torch.tensor(params[name]))
    tx = _t(x, True)
    th0 = None if h0 is None else _t(h0, True)
    tc0 = None if c0 is None else _t(c0, True)
    hx = (th0, tc0) if lstm and th0 is not None else th0
    out = ref(tx, hx)
    outs = out if lstm else (out,)
    loss = sum((t * torch.tensor(g)).sum() for t, g in zip(outs, (gh, gc)) if g is not None)
    loss.backward()
    ref_grads = {n: _np(p.grad) for n, p in ref.named_parameters()}

    # the implementation
    stage("constructing the cell")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = dict(bias=o["bias"], dtype=np.dtype(case.dtype))
        if case.group == "RNNCell":
            args["nonlinearity"] = o["nonlinearity"]
        mine = getattr(impl, case.group)(In, H, **args)
    impl_hx = None if h0 is None else ((h0.copy(), c0.copy()) if lstm else h0.copy())
    got, back, grads, twice = _twice(
        stage, mine, params, lambda: mine(x.copy(), impl_hx),
        lambda: mine.backward(None if gh is None else gh.copy(),
                              None if gc is None else gc.copy()) if lstm
        else mine.backward(gh.copy()))

    c = _Checks(case)
    if lstm:
        c.add("h'", got[0], _np(out[0]), "output")
        c.add("c'", got[1], _np(out[1]), "output")
    else:
        c.add("h'", got, _np(out), "output")
    grad_input, grad_hx = back
    c.add("grad_input", grad_input, _np(tx.grad), "grad_input")
    if lstm:
        if h0 is None:
            c.add("grad_hx", grad_hx, None, "grad_hx")
        else:
            c.add("grad_h0", None if grad_hx is None else grad_hx[0], _np(th0.grad), "grad_hx")
            c.add("grad_c0", None if grad_hx is None else grad_hx[1], _np(tc0.grad), "grad_hx")
    else:
        c.add("grad_hx", grad_hx, None if th0 is None else _np(th0.grad), "grad_hx")
    _param_checks(c, grads, twice, ref_grads)
    return c.list


def _param_checks(c: _Checks, grads: dict, twice: dict, ref_grads: dict) -> None:
    if sorted(grads) != sorted(ref_grads):
        check = TensorCheck("parameter names", "grad_param", c.tol)
        check.problem = f"the implementation has gradients {sorted(grads)}, torch has " \
                        f"parameters {sorted(ref_grads)}"
        c.list.append(check)
    for name, ref in ref_grads.items():
        if name in grads:
            c.add(f"grad[{name}]", grads[name], ref, "grad_param")
            c.add(f"grad[{name}] after 2 backward()", twice.get(name), 2 * ref, "grad_param")


# -- the cell functions ------------------------------------------------------------------------


def _draw_function(draw, profile: Profile, group: str) -> dict:
    top = min(profile.max_size, 6)
    cell = group.partition("_")[0]
    o = {"input_size": draw(st.integers(1, top), "input_size"),
         "hidden_size": draw(st.integers(1, top), "hidden_size"),
         "batch": draw(st.integers(1, min(profile.max_batch, 4)), "batch (B)"),
         "bias": draw(st.booleans(), "bias")}
    if cell == "rnn":
        o["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]), "nonlinearity")
    if cell == "lstm":
        o["proj_size"] = 0
        if o["hidden_size"] > 1:
            o["proj_size"] = draw(st.one_of(st.just(0), st.integers(1, o["hidden_size"] - 1)),
                                  "proj_size")
    return o


def _function_data(case: UnitCase):
    """(cell, the cell forward's arguments in the order of its signature, the upstream
    gradients dh and, for the LSTM, dc)."""
    o, rng = case.opts, _rng(case)
    cell = case.group.partition("_")[0]
    G, H, In, B = spec.mode_named(cell).gates, o["hidden_size"], o["input_size"], o["batch"]
    P = o.get("proj_size", 0)
    H_out = P or H
    k = 1.0 / math.sqrt(H)
    x, h = rng.standard_normal((B, In)), rng.standard_normal((B, H_out)) * 0.5
    c = rng.standard_normal((B, H)) * 0.5 if cell == "lstm" else None
    weights = [rng.uniform(-k, k, (G * H, In)), rng.uniform(-k, k, (G * H, H_out)),
               rng.uniform(-k, k, G * H) if o["bias"] else None,
               rng.uniform(-k, k, G * H) if o["bias"] else None]
    upstream = [rng.standard_normal((B, H_out))]
    if cell == "lstm":
        W_hr = rng.uniform(-k, k, (P, H)) if P else None
        args = [x, h, c, *weights, W_hr]
        upstream.append(rng.standard_normal((B, H)))
    else:
        args = [x, h, *weights] + ([o["nonlinearity"]] if cell == "rnn" else [])
    cast = [_arr(a, case) if isinstance(a, np.ndarray) else a for a in args]
    return cell, cast, [_arr(u, case) for u in upstream]


def run_cell_function(impl: ModuleType, case: UnitCase, stage: _Stage) -> list[TensorCheck]:
    """A cell function (parity.spec) against torch_impl.equations' step, which takes the same
    arguments in the same order; its gradients by autograd, each field ``d<argument>`` of the
    returned grads (the argument named by the function's signature) against that argument's."""
    cell, args, upstream = _function_data(case)
    forward = spec.BY_NAME[f"{cell}_cell_forward"]
    stage(f"{forward.name}()")
    got = forward.resolve(impl)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    leaves = [_t(a, True) if isinstance(a, np.ndarray) else a for a in args]
    ref_out = getattr(equations, f"{cell}_step")(*leaves)
    ref_out = ref_out if isinstance(ref_out, tuple) else (ref_out,)
    c = _Checks(case)
    if case.group.endswith("_forward"):
        outputs = ("h", "c") if cell == "lstm" else ("h",)
        if not isinstance(got, tuple) or len(got) != len(outputs) + 1:
            check = TensorCheck(case.group, "output", c.tol)
            check.problem = (f"should return ({', '.join(outputs)}, cache), got "
                             f"{type(got).__name__} of {len(got) if isinstance(got, tuple) else 1}")
            return [check]
        for name, mine, ref in zip(outputs, got, ref_out):
            c.add(name, mine, _np(ref), "output")
        return c.list
    sum((t * torch.tensor(g)).sum() for t, g in zip(ref_out, upstream)).backward()
    backward = spec.BY_NAME[f"{cell}_cell_backward"]
    stage(f"{backward.name}()")
    grads = backward.resolve(impl)(*[g.copy() for g in upstream], got[-1])
    leaf_of = dict(zip(forward.arguments(impl), leaves))
    fields = getattr(forward.namespace(impl), f"{cell.upper()}CellGrads")._fields
    for i, name in enumerate(fields):
        leaf = leaf_of.get(name[1:])
        want = _np(leaf.grad) if isinstance(leaf, torch.Tensor) else None
        c.add(name, _field(grads, name, i), want, "grad")
    return c.list


# -- Linear and Embedding ----------------------------------------------------------------------
def _draw_linear(draw, profile: Profile, group: str) -> dict:
    return {"in_features": draw(st.integers(1, 6), "in_features"),
            "out_features": draw(st.integers(1, 6), "out_features"),
            "bias": draw(st.booleans(), "bias"),
            "lead": draw(st.lists(st.integers(1, 4), max_size=2), "leading axes of the input")}


def run_linear(impl: ModuleType, case: UnitCase, stage: _Stage) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    In, Out, lead = o["in_features"], o["out_features"], tuple(o["lead"])
    k = 1.0 / math.sqrt(In)
    params = {"weight": _arr(rng.uniform(-k, k, (Out, In)), case)}
    if o["bias"]:
        params["bias"] = _arr(rng.uniform(-k, k, Out), case)
    x = _arr(rng.standard_normal(lead + (In,)), case)
    dy = _arr(rng.standard_normal(lead + (Out,)), case)
    ref = nn.Linear(In, Out, bias=o["bias"], dtype=TORCH_DTYPE[case.dtype])
    with torch.no_grad():
        for n, p in ref.named_parameters():
            p.copy_(torch.tensor(params[n]))
    tx = _t(x, True)
    ty = ref(tx)
    (ty * torch.tensor(dy)).sum().backward()

    stage("constructing the Linear")
    mine = impl.Linear(In, Out, bias=o["bias"], dtype=np.dtype(case.dtype))
    y, dx, grads, twice = _twice(stage, mine, params, lambda: mine(x.copy()),
                                 lambda: mine.backward(dy.copy()))
    c = _Checks(case)
    c.add("output", y, _np(ty), "output")
    c.add("grad_input", dx, _np(tx.grad), "grad_input")
    _param_checks(c, grads, twice, {n: _np(p.grad) for n, p in ref.named_parameters()})
    return c.list


def _draw_embedding(draw, profile: Profile, group: str) -> dict:
    num = draw(st.integers(1, 8), "num_embeddings")
    o = {"num_embeddings": num, "embedding_dim": draw(st.integers(1, 5), "embedding_dim"),
         "padding_idx": draw(st.one_of(st.none(), st.integers(-num, num - 1)), "padding_idx"),
         "shape": draw(st.lists(st.integers(1, 5), max_size=2), "shape of the indices")}
    return o


def run_embedding(impl: ModuleType, case: UnitCase, stage: _Stage) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    num, dim, pad = o["num_embeddings"], o["embedding_dim"], o["padding_idx"]
    shape = tuple(o["shape"])
    weight = _arr(rng.standard_normal((num, dim)), case)
    if pad is not None:
        weight[pad] = 0.0
    idx = rng.integers(0, num, shape)
    if pad is not None and idx.size:  # the padding row is looked up at least once
        idx.reshape(-1)[0] = pad % num
    dy = _arr(rng.standard_normal(shape + (dim,)), case)
    ref = nn.Embedding(num, dim, padding_idx=pad, dtype=TORCH_DTYPE[case.dtype])
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(weight))
    ty = ref(torch.tensor(idx))
    (ty * torch.tensor(dy)).sum().backward()

    stage("constructing the Embedding")
    mine = impl.Embedding(num, dim, padding_idx=pad, dtype=np.dtype(case.dtype))
    y, _, grads, twice = _twice(stage, mine, {"weight": weight}, lambda: mine(idx.copy()),
                                lambda: mine.backward(dy.copy()))
    c = _Checks(case)
    c.add("output", y, _np(ty), "output")
    _param_checks(c, grads, twice, {"weight": _np(ref.weight.grad)})
    return c.list


# -- losses ------------------------------------------------------------------------------------
def _draw_mse(draw, profile: Profile, group: str) -> dict:
    reduction = draw(st.sampled_from(["mean", "sum", "none"]), "reduction")
    return {"reduction": reduction,
            "shape": draw(st.lists(st.integers(1, 5), max_size=3), "shape"),
            "upstream": draw(st.booleans(), "an upstream gradient given")
            or reduction == "none"}


def _draw_cross_entropy(draw, profile: Profile, group: str) -> dict:
    single = draw(st.sampled_from([False, False, True]), "one example (C,)")
    classes = draw(st.integers(1, 6), "classes (C)")
    reduction = draw(st.sampled_from(["mean", "sum", "none"]), "reduction")
    return {"single": single, "classes": classes, "reduction": reduction,
            "batch": 1 if single else draw(st.integers(1, 6), "batch (N)"),
            "ignore_index": draw(st.sampled_from([None, -100, 0, classes - 1, 7]),
                                 "ignore_index (None: the default)"),
            "upstream": draw(st.booleans(), "an upstream gradient given")
            or reduction == "none"}


def run_loss(impl: ModuleType, case: UnitCase, stage: _Stage) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    reduction = o["reduction"]
    kwargs: dict = {"reduction": reduction}
    if case.group == "MSELoss":
        shape = tuple(o["shape"])
        x = _arr(rng.standard_normal(shape), case)
        target = _arr(rng.standard_normal(shape), case)
        ref_fn = nn.MSELoss(**kwargs)
        loss_shape = shape
    else:
        C, N = o["classes"], o["batch"]
        x = _arr(rng.standard_normal((C,) if o["single"] else (N, C)) * 2, case)
        target = rng.integers(0, C, () if o["single"] else (N,))
        if o["ignore_index"] is not None:
            kwargs["ignore_index"] = o["ignore_index"]
            flat = target.reshape(-1)
            ignored = rng.random(flat.shape) < 0.3
            ignored[0] = False  # at least one target counts (else the mean is NaN)
            flat[ignored] = o["ignore_index"]
            if o["single"]:
                target = flat.reshape(())
        ref_fn = nn.CrossEntropyLoss(**kwargs)
        loss_shape = () if o["single"] else (N,)
    upstream = None
    if o["upstream"]:
        upstream = _arr(rng.standard_normal(loss_shape if reduction == "none" else ()), case)
    tx = _t(x, True)
    tl = ref_fn(tx, torch.tensor(target))
    tl.backward(torch.ones((), dtype=tl.dtype) if upstream is None else torch.tensor(upstream))

    stage(f"constructing the {case.group}")
    mine = getattr(impl, case.group)(**kwargs)
    stage("forward()")
    loss = mine(x.copy(), target.copy())
    stage("backward()")
    dx = mine.backward() if upstream is None else mine.backward(upstream.copy())
    c = _Checks(case)
    c.add("loss", loss, _np(tl), "output")
    c.add("grad_input", dx, _np(tx.grad), "grad_input")
    return c.list


# -- clipping ----------------------------------------------------------------------------------
NORM_TYPES = (2.0, 1.0, math.inf, 3.0, 0.5)


def _draw_clip(draw, profile: Profile, group: str) -> dict:
    o = {"in_features": draw(st.integers(1, 5), "in_features"),
         "out_features": draw(st.integers(1, 5), "out_features"),
         "bias": draw(st.booleans(), "bias"),
         "scale": draw(st.sampled_from([0.05, 0.5, 1.5]), "limit / the gradients' size")}
    if group == "clip_grad_norm_":
        o["norm_type"] = draw(st.sampled_from(NORM_TYPES), "norm_type")
        o["infinite"] = draw(st.sampled_from([False, False, False, True]),
                             "an infinite gradient entry")
        o["error_if_nonfinite"] = o["infinite"] and draw(st.booleans(), "error_if_nonfinite")
    return o


def _linear_pair(impl: ModuleType, case: UnitCase, rng):
    o = case.opts
    In, Out = o["in_features"], o["out_features"]
    k = 1.0 / math.sqrt(In)
    params = {"weight": _arr(rng.uniform(-k, k, (Out, In)), case)}
    if o["bias"]:
        params["bias"] = _arr(rng.uniform(-k, k, Out), case)
    ref = nn.Linear(In, Out, bias=o["bias"], dtype=TORCH_DTYPE[case.dtype])
    with torch.no_grad():
        for n, p in ref.named_parameters():
            p.copy_(torch.tensor(params[n]))
    mine = impl.Linear(In, Out, bias=o["bias"], dtype=np.dtype(case.dtype))
    mine.load_state_dict({n: v.copy() for n, v in params.items()})
    return mine, ref, params


def run_clip(impl: ModuleType, case: UnitCase, stage: _Stage) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    stage("constructing a Linear to hold the gradients")
    mine, ref, params = _linear_pair(impl, case, rng)
    grads = {n: _arr(rng.standard_normal(v.shape) * 3, case) for n, v in params.items()}
    finite = [np.linalg.norm(g.ravel(), 2) for g in grads.values()]
    if o.get("infinite"):
        grads["weight"].reshape(-1)[-1] = np.inf
    mine.zero_grad()
    for n, g in grads.items():
        mine.grads[n][...] = g
    for n, p in ref.named_parameters():
        p.grad = torch.tensor(grads[n])
    c = _Checks(case)
    if case.group == "clip_grad_value_":
        limit = o["scale"] * max(float(np.max(np.abs(g))) for g in grads.values())
        nn.utils.clip_grad_value_(ref.parameters(), limit)
        stage("clip_grad_value_()")
        impl.clip_grad_value_(mine, limit)
    else:
        limit = o["scale"] * float(np.linalg.norm(finite))
        p = o["norm_type"]
        try:
            ref_norm = nn.utils.clip_grad_norm_(ref.parameters(), limit, norm_type=p,
                                                error_if_nonfinite=o["error_if_nonfinite"])
            ref_error = None
        except RuntimeError as error:
            ref_error = error
        stage("clip_grad_norm_()")
        try:
            norm = impl.clip_grad_norm_(mine, limit, norm_type=p,
                                        error_if_nonfinite=o["error_if_nonfinite"])
            error = None
        except RuntimeError as raised:
            error = raised
        if ref_error is not None or error is not None:
            check = TensorCheck("RuntimeError for a non-finite norm", "value", c.tol)
            if (ref_error is None) != (error is None):
                check.problem = (f"torch {'raised' if ref_error else 'did not raise'}, the "
                                 f"implementation {'raised' if error else 'did not raise'}")
            c.list.append(check)
            return c.list
        c.add("total_norm", np.asarray(norm, dtype=np.float64),
              _np(ref_norm).astype(np.float64), "value")
    for n, p in ref.named_parameters():
        c.add(f"grad[{n}]", np.array(mine.grads[n], copy=True), _np(p.grad), "grad_param")
    return c.list


# -- optimizers --------------------------------------------------------------------------------
def _draw_optimizer(draw, profile: Profile, group: str) -> dict:
    o = {"in_features": draw(st.integers(1, 4), "in_features"),
         "out_features": draw(st.integers(1, 4), "out_features"),
         "bias": draw(st.booleans(), "bias"),
         "steps": draw(st.integers(1, 3), "steps"),
         "lr": draw(st.sampled_from([0.1, 0.01]), "lr")}
    if group == "SGD":
        o["momentum"] = draw(st.sampled_from([0.0, 0.9]), "momentum")
        o["nesterov"] = o["momentum"] > 0 and draw(st.booleans(), "nesterov")
        o["dampening"] = 0.0 if o["nesterov"] else draw(st.sampled_from([0.0, 0.3]),
                                                        "dampening")
        o["weight_decay"] = draw(st.sampled_from([0.0, 0.01]), "weight_decay")
    else:
        o["betas"] = draw(st.sampled_from([[0.9, 0.999], [0.8, 0.99]]), "betas")
        o["eps"] = draw(st.sampled_from([1e-8, 1e-3]), "eps")
        o["weight_decay"] = draw(st.sampled_from([0.0, 0.1] if group == "Adam" else
                                                 [0.01, 0.1, 0.0]), "weight_decay")
        o["amsgrad"] = draw(st.booleans(), "amsgrad")
    return o


def run_optimizer(impl: ModuleType, case: UnitCase, stage: _Stage) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    stage("constructing a Linear to optimize")
    mine, ref, params = _linear_pair(impl, case, rng)
    options = {k: o[k] for k in ("lr", "momentum", "dampening", "nesterov", "weight_decay",
                                 "eps", "amsgrad") if k in o}
    if "betas" in o:
        options["betas"] = tuple(o["betas"])
    ref_opt = getattr(torch.optim, case.group)(ref.parameters(), **options)
    stage(f"constructing {case.group}")
    opt = getattr(impl, case.group)(mine, **options)
    for step in range(o["steps"]):
        grads = {n: _arr(rng.standard_normal(v.shape), case) for n, v in params.items()}
        for n, p in ref.named_parameters():
            p.grad = torch.tensor(grads[n])
        ref_opt.step()
        stage(f"step() {step + 1}")
        opt.zero_grad()
        for n, g in grads.items():
            mine.grads[n][...] = g
        opt.step()
    c = _Checks(case)
    mine_params = dict(mine.named_parameters())
    for n, p in ref.named_parameters():
        c.add(f"{n} after {o['steps']} step(s)", np.array(mine_params.get(n), copy=True)
              if n in mine_params else None, _np(p), "param")
    return c.list


# -- the catalogue -----------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitGroup:
    name: str
    needs: tuple[str, ...]  # attribute paths the implementation must have
    draw: Callable  # (draw, profile, group) -> options
    run: Callable[[ModuleType, UnitCase, _Stage], list[TensorCheck]]
    pinned: tuple[dict, ...] = ()  # options run before Hypothesis, whatever it draws
    dtypes: tuple[str, ...] = ("float64", "float32")


def _cell_pins(group: str) -> tuple[dict, ...]:
    base = {"input_size": 3, "hidden_size": 4, "batch": 2, "unbatched": False, "hx": True,
            "bias": True}
    extra: dict = {"RNNCell": {"nonlinearity": "tanh"}, "LSTMCell": {"grad": "both"}}.get(
        group, {})
    pins = [dict(base, **extra), dict(base, **extra, hx=False, bias=False),
            dict(base, **extra, unbatched=True, batch=1)]
    if group == "RNNCell":
        pins.append(dict(base, nonlinearity="relu"))
    if group == "LSTMCell":
        pins += [dict(base, grad="h"), dict(base, grad="c")]
    return tuple(pins)


def _function_pins(cell: str) -> tuple[dict, ...]:
    base = {"input_size": 3, "hidden_size": 4, "batch": 2, "bias": True}
    if cell == "rnn":
        return (dict(base, nonlinearity="tanh"), dict(base, nonlinearity="relu", bias=False))
    if cell == "lstm":
        return (dict(base, proj_size=0), dict(base, proj_size=2, bias=False))
    return (base, dict(base, bias=False))


GROUPS: tuple[UnitGroup, ...] = (
    *(UnitGroup(name, (name,), _draw_cell, run_cell_module, _cell_pins(name))
      for name in ("RNNCell", "LSTMCell", "GRUCell")),
    *(UnitGroup(f.name, (f"functional.{f.name.replace('backward', 'forward')}",)
                + ((f"functional.{f.name}",) if f.name.endswith("backward") else ()),
                _draw_function, run_cell_function, _function_pins(f.name.partition("_")[0]))
      for f in spec.FUNCTIONS if f.level == "cell"),
    UnitGroup("Linear", ("Linear",), _draw_linear, run_linear,
              ({"in_features": 3, "out_features": 2, "bias": True, "lead": [4]},
               {"in_features": 2, "out_features": 3, "bias": False, "lead": [2, 3]},
               {"in_features": 3, "out_features": 2, "bias": True, "lead": []})),
    UnitGroup("Embedding", ("Embedding",), _draw_embedding, run_embedding,
              ({"num_embeddings": 5, "embedding_dim": 3, "padding_idx": None, "shape": [4, 2]},
               {"num_embeddings": 5, "embedding_dim": 3, "padding_idx": 1, "shape": [6]},
               {"num_embeddings": 5, "embedding_dim": 3, "padding_idx": -1, "shape": [3, 3]})),
    UnitGroup("MSELoss", ("MSELoss",), _draw_mse, run_loss,
              tuple({"reduction": r, "shape": [3, 2], "upstream": u}
                    for r, u in (("mean", False), ("sum", True), ("none", True)))),
    UnitGroup("CrossEntropyLoss", ("CrossEntropyLoss",), _draw_cross_entropy, run_loss,
              tuple({"single": s, "classes": 4, "reduction": r, "batch": 1 if s else 5,
                     "ignore_index": i, "upstream": u}
                    for s, r, i, u in ((False, "mean", None, False), (False, "sum", 0, True),
                                       (False, "none", -100, True), (True, "mean", 3, True),
                                       (False, "mean", 2, True)))),
    UnitGroup("clip_grad_norm_", ("clip_grad_norm_", "Linear"), _draw_clip, run_clip,
              tuple({"in_features": 3, "out_features": 2, "bias": True, "scale": s,
                     "norm_type": p, "infinite": inf, "error_if_nonfinite": err}
                    for s, p, inf, err in ((0.5, 2.0, False, False),
                                           (1.5, 2.0, False, False),
                                           (0.5, math.inf, False, False),
                                           (0.5, 1.0, False, False),
                                           (0.5, 2.0, True, False),
                                           (0.5, 2.0, True, True)))),
    UnitGroup("clip_grad_value_", ("clip_grad_value_", "Linear"), _draw_clip, run_clip,
              ({"in_features": 3, "out_features": 2, "bias": True, "scale": 0.5},)),
    UnitGroup("SGD", ("SGD", "Linear"), _draw_optimizer, run_optimizer,
              tuple(dict({"in_features": 3, "out_features": 2, "bias": True, "steps": 3,
                          "lr": 0.1}, **extra)
                    for extra in ({"momentum": 0.0, "nesterov": False, "dampening": 0.0,
                                   "weight_decay": 0.0},
                                  {"momentum": 0.9, "nesterov": True, "dampening": 0.0,
                                   "weight_decay": 0.01},
                                  {"momentum": 0.9, "nesterov": False, "dampening": 0.3,
                                   "weight_decay": 0.0}))),
    *(UnitGroup(name, (name, "Linear"), _draw_optimizer, run_optimizer,
                tuple({"in_features": 3, "out_features": 2, "bias": True, "steps": 3,
                       "lr": 0.01, "betas": [0.8, 0.99], "eps": eps, "weight_decay": wd,
                       "amsgrad": ams}
                      for eps, wd, ams in ((1e-8, 0.0, False), (1e-3, 0.1, True))))
      for name in ("Adam", "AdamW")),
)
GROUPS_BY_NAME = {g.name: g for g in GROUPS}


def missing(impl: ModuleType, group: UnitGroup) -> str | None:
    """Why the implementation cannot run this group, or None."""
    for path in group.needs:
        obj = impl
        for part in path.split("."):
            if not hasattr(obj, part):
                return f"the module has no {path}"
            obj = getattr(obj, part)
    return None


def run_unit_case(case: UnitCase, impl: ModuleType, impl_name: str = "scratch") -> UnitResult:
    result = UnitResult(case, impl_name)
    group = GROUPS_BY_NAME[case.group]
    stage = _Stage()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result.checks = group.run(impl, case, stage)
    except Exception as error:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        result.crash = (f"{type(error).__name__}: {error} (during {stage.now}, at "
                        f"{frame.filename}:{frame.lineno})")
    return result


# -- running a group ---------------------------------------------------------------------------
UNIT_EXAMPLES = {"quick": 15, "ci": 100, "thorough": 300}


# how the summary counts a case's options: one column per value, or whether it is set
CATEGORIES = ("nonlinearity", "grad", "reduction", "norm_type", "steps", "eps", "betas")
NONZERO = ("proj_size", "momentum", "dampening", "weight_decay")


@dataclass
class UnitOutcome:
    group: str
    pinned: int = 0
    explored: int = 0
    seconds: float = 0.0
    failure: UnitResult | None = None
    found_by: str = ""
    options: Counter = field(default_factory=Counter)
    worst: dict = field(default_factory=dict)  # dtype -> (error, tol)
    ratio: float = 0.0

    @property
    def cases(self) -> int:
        return sum(self.options[d] for d in ("float64", "float32"))

    def record(self, result: UnitResult) -> None:
        case = result.case
        self.options[case.dtype] += 1
        for key, value in case.options:
            if isinstance(value, bool):
                if value:
                    self.options[key] += 1
            elif key in CATEGORIES:
                self.options[f"{key}={value}"] += 1
            elif key in NONZERO and value:
                self.options[key] += 1
            elif key in ("padding_idx", "ignore_index") and value is not None:
                self.options[key] += 1
        for check in result.checks:
            if check.problem is None:
                error, tol = self.worst.get(case.dtype, (0.0, 0.0))
                if check.error >= error:
                    self.worst[case.dtype] = (check.error, check.tol)
                self.ratio = max(self.ratio, check.error / check.tol)


def run_unit_group(group: UnitGroup, profile: Profile, impl: ModuleType, impl_name: str,
                   seed: int | None = None) -> UnitOutcome:
    from parity.runner import hypothesis_settings, search

    settings = hypothesis_settings(profile)
    settings = type(settings)(settings, max_examples=UNIT_EXAMPLES.get(profile.name, 50))

    def draw_case(data) -> UnitCase:
        def draw(strategy, label):
            return data.draw(strategy, label=label)

        options = group.draw(draw, profile, group.name)
        dtype = draw(st.sampled_from(group.dtypes), "dtype")
        return make_case(group.name, options, dtype, draw(st.integers(0, 2**32 - 1),
                                                          "seed of the arrays"))

    pinned = [(f"pinned case {i + 1}", make_case(group.name, options, dtype, 1000 + i))
              for i, options in enumerate(group.pinned) for dtype in group.dtypes]
    chosen = (zlib.crc32(f"{profile.name}/{group.name}/{seed}".encode())
              if seed is not None or profile.derandomize else None)
    outcome = UnitOutcome(group.name)
    return search(outcome, pinned, lambda case: run_unit_case(case, impl, impl_name),
                  draw_case, outcome.record, settings, chosen,
                  lambda result: not result.checks and result.crash is None, profile.shrink)
