"""Parity of every other public function, each a named *group* run like a mode in
parity.runner (pinned cases, then Hypothesis, the first failure shrunk and reported with the
group's name): the cell modules (``RNNCell``...), scratch.functional's cell functions
(``rnn_cell_forward``..., against torch autograd of torch_impl.equations; a backward is handed
the implementation's own forward's cache), ``Linear``, ``Embedding``, the losses, the clipping
functions on a Linear's gradients and the optimizers on its parameters. What each compares and
draws over is the table in docs/parity.md ("The other public functions").

A case is plain data (``UnitCase``: the group, the dtype, a seed and the drawn options), its
arrays drawn from NumPy's generator with that seed, so ``--reproduce`` reruns it from its JSON.
An implementation that lacks what a group needs (``impl.Embedding``, ``impl.functional``...)
has that group skipped, and the run says so by name.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
from hypothesis import strategies as st
from torch import nn

from parity import spec, tolerances
from parity.calls import arguments, cell_values, places
from parity.case import FunctionCase, FunctionData, make_function_data
from parity.compare import CaseResult, TensorCheck, compare_tensor, crash_words, param_checks
from parity.impl import copied, run_twice
from parity.reference import TORCH_DTYPE
from parity.reference import as_array as _np
from parity.runner import Run, Stats, search
from parity.strategies import DTYPES, Profile
from torch_impl import equations


# -- a case ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitCase:
    group: str
    options: tuple  # sorted (name, value) pairs, JSON values
    dtype: str = "float64"
    seed: int = 0

    # one step deep: held to the tolerance of T * layers = 1 (parity.tolerances)
    seq_len = 1
    num_layers = 1

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
        return make_case(group, fields, fields.pop("dtype", "float64"), fields.pop("seed", 0))

    def describe(self) -> str:
        words = ", ".join(f"{k}={v}" for k, v in self.options)
        return f"{self.group}: {words}, {self.dtype}, seed {self.seed}"


def make_case(group: str, options: dict, dtype: str, seed: int) -> UnitCase:
    pairs = ((k, list(v) if isinstance(v, tuple) else v) for k, v in options.items())
    return UnitCase(group, tuple(sorted(pairs)), dtype, int(seed))


# how the summary counts a case's options: one column per value, or whether it is set
# (True, non-zero, not None)
CATEGORIES = ("nonlinearity", "grad", "reduction", "norm_type", "steps", "eps", "betas")
NONZERO = ("proj_size", "momentum", "dampening", "weight_decay")
NOT_NONE = ("padding_idx", "ignore_index")


def unit_columns(case: UnitCase) -> list[str]:
    """The option columns a case counts in (parity.runner.Stats)."""
    columns = [case.dtype]
    for key, value in case.options:
        if key in CATEGORIES:
            columns.append(f"{key}={value}")
        elif value is True or (key in NONZERO and value) or (key in NOT_NONE
                                                               and value is not None):
            columns.append(key)
    return columns


# -- helpers -----------------------------------------------------------------------------------
def _rng(case: UnitCase) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(case.group.encode()), case.seed])


def _arr(a, case: UnitCase) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).astype(case.dtype)


def _leaf(a):
    """torch's input: a float array as a leaf that collects a gradient, an integer array as a
    tensor; tuples alike, anything else as it is."""
    if isinstance(a, tuple):
        return tuple(_leaf(v) for v in a)
    if isinstance(a, np.ndarray):
        return torch.tensor(a).requires_grad_(a.dtype.kind == "f")
    return a


def _backward(outputs, upstream) -> None:
    """Back-propagate sum(output * upstream) through torch (an upstream None: no gradient)."""
    sum((t * torch.tensor(g)).sum() for t, g in zip(outputs, upstream) if g is not None
        ).backward()


def _pair(impl: ModuleType, cls: str, params: dict, case: UnitCase, stage: list[str], *args,
          **kwargs) -> tuple:
    """The implementation's ``<cls>`` and ``nn.<cls>``, built alike (``args``, ``kwargs``, the
    case's dtype) and loaded with ``params``."""
    ref = getattr(nn, cls)(*args, dtype=TORCH_DTYPE[case.dtype], **kwargs)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.copy_(torch.tensor(params[name]))
    stage.append(f"constructing the {cls}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine = getattr(impl, cls)(*args, dtype=np.dtype(case.dtype), **kwargs)
    stage.append("load_state_dict()")
    mine.load_state_dict({k: v.copy() for k, v in params.items()})
    return mine, ref


def _modules(impl: ModuleType, case: UnitCase, stage: list[str], params: dict, inputs: tuple,
             upstream: tuple, *args, **kwargs):
    """The pair of ``<group>`` modules (_pair) run on ``inputs`` and back-propagated from
    ``upstream`` (one per output); the implementation's forward() and backward() twice
    without zero_grad(). Returns (torch's outputs, torch's input leaves, the implementation's
    first forward and backward results, the checks of the parameters' gradients)."""
    mine, ref = _pair(impl, case.group, params, case, stage, *args, **kwargs)
    leaves = _leaf(inputs)
    out = ref(*leaves)
    outs = out if isinstance(out, tuple) else (out,)
    _backward(outs, upstream)
    (got, back, grads), (_, _, twice) = run_twice(mine, inputs, upstream, stage)
    ref_grads = {n: _np(p.grad) for n, p in ref.named_parameters()}
    return outs, leaves, got, back, param_checks(grads, twice, ref_grads, _tol(case))


def _tol(case: UnitCase) -> float:
    return tolerances.tolerance(case.dtype, 1, 1)


class _Checks(list):
    """The checks of one case, each against the tolerance of one step; ``rows`` are the
    arguments of add()."""

    def __init__(self, case: UnitCase, *rows: tuple) -> None:
        super().__init__()
        self.tol = _tol(case)
        for row in rows:
            self.add(*row)

    def add(self, name: str, impl, ref, quantity: str = "value") -> None:
        """``impl`` against torch's ``ref`` (a tensor, an array, or None: impl must be too)."""
        ref = _np(ref) if isinstance(ref, torch.Tensor) else ref
        if ref is None:
            self.append(TensorCheck(name, quantity, self.tol, problem=None if impl is None else
                                    f"returned {type(impl).__name__}, torch has None here"))
            return
        # a number or a 0-d float array where torch has a 0-d tensor: taken at torch's dtype
        if isinstance(impl, (float, int, np.floating)) and not isinstance(impl, bool):
            impl = np.asarray(impl, dtype=ref.dtype)
        elif isinstance(impl, np.ndarray) and impl.shape == ref.shape == () \
                and impl.dtype.kind == "f":
            impl = impl.astype(ref.dtype)
        self.append(compare_tensor(name, quantity, impl, ref, self.tol))


# -- the cell modules --------------------------------------------------------------------------
def _draw_cell(draw, profile: Profile, group: str) -> dict:
    """A cell module's options (``RNNCell``) or a cell function's (``rnn_cell_forward``)."""
    top = min(profile.max_size, 6)
    cls = spec.mode_named(group.partition("_")[0]).cls
    module = group.endswith("Cell")
    o = {"input_size": draw(st.integers(1, top), "input_size"),
         "hidden_size": draw(st.integers(1, top), "hidden_size"),
         "batch": draw(st.integers(1, min(profile.max_batch, 4)), "batch (B)"),
         "bias": draw(st.booleans(), "bias")}
    if module:
        o["unbatched"] = draw(st.sampled_from([False, False, True]), "unbatched")
        o["hx"] = draw(st.booleans(), "hx given")
        o["batch"] = 1 if o["unbatched"] else o["batch"]
    if cls == "RNN":
        o["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]), "nonlinearity")
    if cls == "LSTM" and module:
        o["grad"] = draw(st.sampled_from(["both", "h", "c"]), "upstream gradient of (h, c)")
    if cls == "LSTM" and not module:
        o["proj_size"] = 0
        if o["hidden_size"] > 1:
            o["proj_size"] = draw(st.one_of(st.just(0), st.integers(1, o["hidden_size"] - 1)),
                                  "proj_size")
    return o


def _cell_data(case: UnitCase) -> tuple[str, FunctionData]:
    """The case's mode and the arrays of one step, as the grader draws a cell's
    (parity.case.make_function_data: float64, cast to the case's dtype where used)."""
    o = case.opts
    mode = spec.mode_of(spec.mode_named(case.group.partition("_")[0]).cls,
                        o.get("nonlinearity", "tanh"))
    return mode, make_function_data(FunctionCase(
        mode, 1, o["batch"], o["input_size"], o["hidden_size"], o.get("proj_size", 0),
        o["bias"], seed=case.seed))


def run_cell_module(impl: ModuleType, case: UnitCase, stage: list[str]) -> list[TensorCheck]:
    o = case.opts
    mode, d = _cell_data(case)
    lstm = mode == "LSTM"
    params = {n: _arr(v, case) for n, v in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                                               (d.W_ih, d.W_hh, d.b_ih, d.b_hh))
              if v is not None}
    def user(a):  # one row of the step's arrays, without its batch axis when unbatched
        return None if a is None else _arr(a[0] if o["unbatched"] else a, case)

    x, h0, c0, gh, gc = (user(a) for a in (d.x[0], d.h0, d.c0, d.doutput[0], d.dc_n))
    hx = None
    if o["hx"]:
        hx = (h0, c0) if lstm else h0
    gh = None if o.get("grad") == "c" else gh  # LSTMCell: the gradient into h, c or both
    gc = None if o.get("grad") == "h" else gc
    upstream = (gh, gc)
    kwargs = {"nonlinearity": o["nonlinearity"]} if "nonlinearity" in o else {}
    outs, (tx, thx), got, back, grads = _modules(
        impl, case, stage, params, (x, hx), upstream if lstm else (gh,), o["input_size"],
        o["hidden_size"], bias=o["bias"], **kwargs)

    c = _Checks(case)
    for name, mine, ref in zip(("h'", "c'"), got if lstm else (got,), outs):
        c.add(name, mine, ref, "output")
    grad_input, grad_hx = back
    c.add("grad_input", grad_input, tx.grad, "grad_input")
    if lstm and o["hx"]:
        for i, name in enumerate(("grad_h0", "grad_c0")):
            c.add(name, None if grad_hx is None else grad_hx[i], thx[i].grad, "grad_hx")
    else:
        c.add("grad_hx", grad_hx, None if thx is None else thx.grad, "grad_hx")
    return c + grads


# -- the cell functions ------------------------------------------------------------------------
def run_cell_function(impl: ModuleType, case: UnitCase, stage: list[str]) -> list[TensorCheck]:
    """A cell function (parity.spec) against torch_impl.equations' step, which takes the same
    arguments in the same order; its gradients by autograd, each field ``d<argument>`` of the
    returned grads (the argument named by the function's signature) against that argument's."""
    mode, d = _cell_data(case)
    cell = spec.MODES[mode].cell
    forward = spec.BY_NAME[f"{cell}_cell_forward"]
    values = {place: _arr(v, case) if isinstance(v, np.ndarray) else v
              for place, v in cell_values(mode, d).items()}
    args = arguments(forward.name, values)
    stage.append(f"{forward.name}()")
    got = forward.resolve(impl)(*copied(args))
    leaves = _leaf(args)
    ref_out = getattr(equations, f"{cell}_step")(*leaves)
    ref_out = ref_out if isinstance(ref_out, tuple) else (ref_out,)
    c = _Checks(case)
    if case.group.endswith("_forward"):
        names = spec.output_names()[forward.name]  # its outputs, then the cache
        if not isinstance(got, tuple) or len(got) != len(names):
            return [TensorCheck(case.group, "output", c.tol, problem=(
                f"should return ({', '.join(names)}), got {type(got).__name__} of "
                f"{len(got) if isinstance(got, tuple) else 1}"))]
        for name, mine, ref in zip(names[:-1], got, ref_out):
            c.add(name, mine, ref, "output")
        return c
    backward = spec.BY_NAME[f"{cell}_cell_backward"]
    back_args = arguments(backward.name, dict(copied(values), cache=got[-1]))
    _backward(ref_out, back_args[:places(backward).index("cache")])  # the upstream gradients
    stage.append(f"{backward.name}()")
    grads = backward.resolve(impl)(*back_args)
    leaf_of = dict(zip(forward.arguments(impl), leaves))
    fields = forward.named_tuple("Grads", impl)._fields
    for i, name in enumerate(fields):  # by name, or by position in a plain tuple
        leaf = leaf_of.get(name[1:])
        want = leaf.grad if isinstance(leaf, torch.Tensor) else None
        c.add(name, getattr(grads, name) if hasattr(grads, "_fields") else grads[i], want,
              "grad")
    return c


# -- Linear and Embedding ----------------------------------------------------------------------
def _draw_features(draw, top: int) -> dict:
    """A Linear's sizes (up to ``top``) and whether it has a bias."""
    return {"in_features": draw(st.integers(1, top), "in_features"),
            "out_features": draw(st.integers(1, top), "out_features"),
            "bias": draw(st.booleans(), "bias")}


def _draw_linear(draw, profile: Profile, group: str) -> dict:
    return {**_draw_features(draw, 6),
            "lead": draw(st.lists(st.integers(1, 4), max_size=2), "leading axes of the input")}


def _linear_params(case: UnitCase, rng) -> dict[str, np.ndarray]:
    o = case.opts
    k = 1.0 / math.sqrt(o["in_features"])
    params = {"weight": _arr(rng.uniform(-k, k, (o["out_features"], o["in_features"])), case)}
    if o["bias"]:
        params["bias"] = _arr(rng.uniform(-k, k, o["out_features"]), case)
    return params


def run_linear(impl: ModuleType, case: UnitCase, stage: list[str]) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    In, Out, lead = o["in_features"], o["out_features"], tuple(o["lead"])
    params = _linear_params(case, rng)
    x = _arr(rng.standard_normal(lead + (In,)), case)
    dy = _arr(rng.standard_normal(lead + (Out,)), case)
    (ty,), (tx,), y, dx, grads = _modules(impl, case, stage, params, (x,), (dy,), In, Out,
                                          bias=o["bias"])
    return _Checks(case, ("output", y, ty, "output"),
                   ("grad_input", dx, tx.grad, "grad_input")) + grads


def _draw_embedding(draw, profile: Profile, group: str) -> dict:
    num = draw(st.integers(1, 8), "num_embeddings")
    return {"num_embeddings": num, "embedding_dim": draw(st.integers(1, 5), "embedding_dim"),
            "padding_idx": draw(st.one_of(st.none(), st.integers(-num, num - 1)),
                                "padding_idx"),
            "shape": draw(st.lists(st.integers(1, 5), max_size=2), "shape of the indices")}


def run_embedding(impl: ModuleType, case: UnitCase, stage: list[str]) -> list[TensorCheck]:
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
    (ty,), _, y, _, grads = _modules(impl, case, stage, {"weight": weight}, (idx,), (dy,), num,
                                     dim, padding_idx=pad)
    return _Checks(case, ("output", y, ty, "output")) + grads


# -- losses ------------------------------------------------------------------------------------
def _draw_loss(draw, profile: Profile, group: str) -> dict:
    o = {"reduction": draw(st.sampled_from(["mean", "sum", "none"]), "reduction")}
    if group == "MSELoss":
        o["shape"] = draw(st.lists(st.integers(1, 5), max_size=3), "shape")
    else:
        o["single"] = draw(st.sampled_from([False, False, True]), "one example (C,)")
        o["classes"] = draw(st.integers(1, 6), "classes (C)")
        o["batch"] = 1 if o["single"] else draw(st.integers(1, 6), "batch (N)")
        o["ignore_index"] = draw(st.sampled_from([None, -100, 0, o["classes"] - 1, 7]),
                                 "ignore_index (None: the default)")
    o["upstream"] = draw(st.booleans(), "an upstream gradient given") or o["reduction"] == "none"
    return o


def run_loss(impl: ModuleType, case: UnitCase, stage: list[str]) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    reduction = o["reduction"]
    kwargs: dict = {"reduction": reduction}
    if case.group == "MSELoss":
        shape = tuple(o["shape"])
        x = _arr(rng.standard_normal(shape), case)
        target = _arr(rng.standard_normal(shape), case)
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
        loss_shape = () if o["single"] else (N,)
    upstream = None
    if o["upstream"]:
        upstream = _arr(rng.standard_normal(loss_shape if reduction == "none" else ()), case)
    tx = _leaf(x)
    tl = getattr(nn, case.group)(**kwargs)(tx, torch.tensor(target))
    tl.backward(torch.ones((), dtype=tl.dtype) if upstream is None else torch.tensor(upstream))

    stage.append(f"constructing the {case.group}")
    mine = getattr(impl, case.group)(**kwargs)
    stage.append("forward()")
    loss = mine(x.copy(), target.copy())
    stage.append("backward()")
    dx = mine.backward() if upstream is None else mine.backward(upstream.copy())
    return _Checks(case, ("loss", loss, tl, "output"), ("grad_input", dx, tx.grad, "grad_input"))


# -- clipping and optimizers, on a Linear's gradients and parameters ---------------------------
def _draw_clip(draw, profile: Profile, group: str) -> dict:
    o = {**_draw_features(draw, 5),
         "scale": draw(st.sampled_from([0.05, 0.5, 1.5]), "limit / the gradients' size")}
    if group == "clip_grad_norm_":
        o["norm_type"] = draw(st.sampled_from([2.0, 1.0, math.inf, 3.0, 0.5]), "norm_type")
        o["infinite"] = draw(st.sampled_from([False, False, False, True]),
                             "an infinite gradient entry")
        o["error_if_nonfinite"] = o["infinite"] and draw(st.booleans(), "error_if_nonfinite")
    return o


def _linear_pair(impl: ModuleType, case: UnitCase, rng, stage: list[str]):
    """The implementation's Linear and torch's (_pair), and their parameters."""
    o = case.opts
    params = _linear_params(case, rng)
    return (*_pair(impl, "Linear", params, case, stage, o["in_features"], o["out_features"],
                   bias=o["bias"]), params)


def _give_grads(mine, ref: nn.Module, grads: dict) -> None:
    """The same gradients to both Linears' parameters."""
    for n, p in ref.named_parameters():
        mine.grads[n][...] = grads[n]
        p.grad = torch.tensor(grads[n])


def run_clip(impl: ModuleType, case: UnitCase, stage: list[str]) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    mine, ref, params = _linear_pair(impl, case, rng, stage)
    grads = {n: _arr(rng.standard_normal(v.shape) * 3, case) for n, v in params.items()}
    finite = [np.linalg.norm(g.ravel(), 2) for g in grads.values()]
    if o.get("infinite"):
        grads["weight"].reshape(-1)[-1] = np.inf
    mine.zero_grad()
    _give_grads(mine, ref, grads)
    c = _Checks(case)
    if case.group == "clip_grad_value_":
        limit = o["scale"] * max(float(np.max(np.abs(g))) for g in grads.values())
        nn.utils.clip_grad_value_(ref.parameters(), limit)
        stage.append("clip_grad_value_()")
        impl.clip_grad_value_(mine, limit)
    else:
        limit = o["scale"] * float(np.linalg.norm(finite))
        kwargs = {"norm_type": o["norm_type"], "error_if_nonfinite": o["error_if_nonfinite"]}
        stage.append("clip_grad_norm_()")
        results = []  # torch's, the implementation's: a RuntimeError (a non-finite norm) as one
        for call in (lambda: nn.utils.clip_grad_norm_(ref.parameters(), limit, **kwargs),
                     lambda: impl.clip_grad_norm_(mine, limit, **kwargs)):
            try:
                results.append(call())
            except RuntimeError as error:
                results.append(error)
        ref_norm, norm = results
        raised = [isinstance(r, RuntimeError) for r in results]
        if any(raised):
            said = ["raised" if r else "did not raise" for r in raised]
            return [TensorCheck("RuntimeError for a non-finite norm", "value", c.tol, problem=(
                None if all(raised) else f"torch {said[0]}, the implementation {said[1]}"))]
        c.add("total_norm", np.asarray(norm, dtype=np.float64),
              _np(ref_norm).astype(np.float64), "value")
    for n, p in ref.named_parameters():
        c.add(f"grad[{n}]", copied(mine.grads[n]), p.grad, "grad_param")
    return c


def _draw_optimizer(draw, profile: Profile, group: str) -> dict:
    o = {**_draw_features(draw, 4),
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


def run_optimizer(impl: ModuleType, case: UnitCase, stage: list[str]) -> list[TensorCheck]:
    o, rng = case.opts, _rng(case)
    mine, ref, params = _linear_pair(impl, case, rng, stage)
    options = {k: o[k] for k in ("lr", "momentum", "dampening", "nesterov", "weight_decay",
                                 "eps", "amsgrad") if k in o}
    if "betas" in o:
        options["betas"] = tuple(o["betas"])
    ref_opt = getattr(torch.optim, case.group)(ref.parameters(), **options)
    stage.append(f"constructing {case.group}")
    opt = getattr(impl, case.group)(mine, **options)
    for step in range(o["steps"]):
        grads = {n: _arr(rng.standard_normal(v.shape), case) for n, v in params.items()}
        stage.append(f"step() {step + 1}")
        opt.zero_grad()
        _give_grads(mine, ref, grads)
        ref_opt.step()
        opt.step()
    c = _Checks(case)
    mine_params = dict(mine.named_parameters())
    for n, p in ref.named_parameters():
        c.add(f"{n} after {o['steps']} step(s)", copied(mine_params.get(n)), p, "param")
    return c


# -- the catalogue -----------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitGroup:
    name: str
    needs: tuple[str, ...]  # attribute paths the implementation must have
    draw: Callable  # (draw, profile, group) -> options
    run: Callable[[ModuleType, UnitCase, list[str]], list[TensorCheck]]
    pinned: tuple[dict, ...] = ()  # options run before Hypothesis, whatever it draws


def _pins(base: dict, keys: str, *rows: tuple) -> tuple[dict, ...]:
    """Pinned options, one per row: ``base`` with the row's values of the named ``keys``."""
    return tuple(dict(base, **dict(zip(keys.split(), row))) for row in rows)


def _cell_pins(first: dict, *more: dict) -> tuple[dict, ...]:
    """A cell module's pins: ``first`` (batched, with hx and bias), then without hx and bias,
    unbatched, and ``more``."""
    base = dict(_CELL, unbatched=False, hx=True, **first)
    changes = ({}, {"hx": False, "bias": False}, {"unbatched": True, "batch": 1}, *more)
    return tuple(dict(base, **change) for change in changes)


_CELL = {"input_size": 3, "hidden_size": 4, "batch": 2, "bias": True}
_FUNCTION_PINS = {"rnn": _pins(_CELL, "nonlinearity bias", ("tanh", True), ("relu", False)),
                  "lstm": _pins(_CELL, "proj_size bias", (0, True), (2, False)),
                  "gru": _pins(_CELL, "bias", (True,), (False,))}
_LINEAR = {"in_features": 3, "out_features": 2, "bias": True}
_ADAM = dict(_LINEAR, steps=3, lr=0.01, betas=[0.8, 0.99])

GROUPS: tuple[UnitGroup, ...] = (
    UnitGroup("RNNCell", ("RNNCell",), _draw_cell, run_cell_module,
              _cell_pins({"nonlinearity": "tanh"}, {"nonlinearity": "relu"})),
    UnitGroup("LSTMCell", ("LSTMCell",), _draw_cell, run_cell_module,
              _cell_pins({"grad": "both"}, {"grad": "h"}, {"grad": "c"})),
    UnitGroup("GRUCell", ("GRUCell",), _draw_cell, run_cell_module, _cell_pins({})),
    *(UnitGroup(f.name, tuple(dict.fromkeys((f"functional.{f.name.replace('backward', 'forward')}",
                                             f"functional.{f.name}"))),
                _draw_cell, run_cell_function, _FUNCTION_PINS[f.name.partition("_")[0]])
      for f in spec.FUNCTIONS if f.level == "cell"),
    UnitGroup("Linear", ("Linear",), _draw_linear, run_linear,
              _pins({}, "in_features out_features bias lead", (3, 2, True, [4]),
                    (2, 3, False, [2, 3]), (3, 2, True, []))),
    UnitGroup("Embedding", ("Embedding",), _draw_embedding, run_embedding,
              _pins({"num_embeddings": 5, "embedding_dim": 3}, "padding_idx shape",
                    (None, [4, 2]), (1, [6]), (-1, [3, 3]))),
    UnitGroup("MSELoss", ("MSELoss",), _draw_loss, run_loss,
              _pins({"shape": [3, 2]}, "reduction upstream",
                    ("mean", False), ("sum", True), ("none", True))),
    UnitGroup("CrossEntropyLoss", ("CrossEntropyLoss",), _draw_loss, run_loss,
              _pins({"classes": 4}, "single batch reduction ignore_index upstream",
                    (False, 5, "mean", None, False), (False, 5, "sum", 0, True),
                    (False, 5, "none", -100, True), (True, 1, "mean", 3, True),
                    (False, 5, "mean", 2, True))),
    UnitGroup("clip_grad_norm_", ("clip_grad_norm_", "Linear"), _draw_clip, run_clip,
              _pins(_LINEAR, "scale norm_type infinite error_if_nonfinite",
                    (0.5, 2.0, False, False), (1.5, 2.0, False, False),
                    (0.5, math.inf, False, False), (0.5, 1.0, False, False),
                    (0.5, 2.0, True, False), (0.5, 2.0, True, True))),
    UnitGroup("clip_grad_value_", ("clip_grad_value_", "Linear"), _draw_clip, run_clip,
              _pins(_LINEAR, "scale", (0.5,))),
    UnitGroup("SGD", ("SGD", "Linear"), _draw_optimizer, run_optimizer,
              _pins(dict(_LINEAR, steps=3, lr=0.1), "momentum nesterov dampening weight_decay",
                    (0.0, False, 0.0, 0.0), (0.9, True, 0.0, 0.01), (0.9, False, 0.3, 0.0))),
    *(UnitGroup(name, (name, "Linear"), _draw_optimizer, run_optimizer,
                _pins(_ADAM, "eps weight_decay amsgrad", (1e-8, 0.0, False), (1e-3, 0.1, True)))
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


def run_unit_case(case: UnitCase, impl: ModuleType, impl_name: str = "scratch") -> CaseResult:
    result = CaseResult(case, impl_name)
    stage = ["building"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result.checks = GROUPS_BY_NAME[case.group].run(impl, case, stage)
    except Exception as error:  # the implementation's own failure is a finding, not a crash
        result.crash = crash_words(error, stage[-1])
    return result


# -- running a group ---------------------------------------------------------------------------
def run_unit_group(group: UnitGroup, profile: Profile, impl: ModuleType, impl_name: str,
                   seed: int | None = None) -> Run:
    """Pinned cases in both dtypes, then Hypothesis, for one group (like a mode, on the CPU);
    the run's ``stats`` are the group's own."""

    def draw_case(data) -> UnitCase:
        def draw(strategy, label):
            return data.draw(strategy, label=label)

        options = group.draw(draw, profile, group.name)
        dtype = draw(st.sampled_from(DTYPES), "dtype")
        return make_case(group.name, options, dtype, draw(st.integers(0, 2**32 - 1),
                                                          "seed of the arrays"))

    pinned = [(f"pinned case {i + 1}", make_case(group.name, options, dtype, 1000 + i))
              for i, options in enumerate(group.pinned) for dtype in DTYPES]
    run = Run(group.name, stats=Stats(key="group", columns=unit_columns))
    return search(run, pinned, lambda case: run_unit_case(case, impl, impl_name), draw_case,
                  run.stats.record, lambda result: not result.checks and result.crash is None,
                  profile, profile.group_examples, seed)
