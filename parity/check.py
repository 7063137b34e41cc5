"""``python -m parity check [DIR]``: the grader's visible items, run on your own machine.

Run it in the directory that holds your ``scratch/`` package (or give that directory). It
runs each item the grader shows you on the grader's own public cases (``parity.case.
public_cases``: the grader runs them first, before cases it draws), compares your answers with
the grader's comparator and words a failure as the grader's feedback does, word for word
(``parity.calls``): the function, the value that differs most and where, and the smallest
failing case. Where a function you write calls other study functions, those are answered by
the reference for that item, as in the grader, so a mistake costs only the items that grade
the function that makes it.

The reference is torch's equations (``torch_impl/equations.py``) and torch's autograd where
the grader's is a reference solution: the two agree to about 1e-15, far inside the tolerance.
Without torch there is no reference, only your own code: the items that grade backward
functions alone are then judged against central finite differences of your own forward
functions (with the looser ``FD_TOL``), and every other item is not judged, with the reason.

NumPy and the standard library (and torch where installed): the handout ships this file
with ``spec``, ``case``, ``calls``, ``diff``, ``tolerances`` and torch's equations.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import importlib
import inspect
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from parity import spec, tolerances
from parity.calls import (
    Call,
    Failure,
    calls_of,
    cell_args,
    failure_text,
    judge,
    judge_layer,
    layer_request,
    step_args,
)
from parity.case import Case, make_data, make_function_data, public_cases
from parity.diff import ANYTHING, numerical_gradient

try:
    import torch
except ImportError:
    torch = None  # type: ignore[assignment]

CONVENTIONS = ("without torch there is no reference to compare a forward pass with, and a "
               "convention error (torch's gate order, where the GRU's reset gate sits) is "
               "invisible to finite differences, which only check that a backward function "
               "agrees with your own forward: pip install torch")


class NotJudged(Exception):
    """This item cannot be judged here; the message says why."""


# -- your package --------------------------------------------------------------------------------
def load_package(root: Path):
    """Your ``scratch``, imported from root (any other ``scratch`` forgotten first)."""
    for name in [k for k in sys.modules if k == "scratch" or k.startswith("scratch.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    package = importlib.import_module("scratch")
    for function in spec.FUNCTIONS:
        importlib.import_module(function.module)
    origin = Path(package.__file__).resolve()
    if root.resolve() not in origin.parents:
        raise ImportError(f"scratch was imported from {origin}, not from {root}")
    return package


def error_of(error: BaseException, root: Path) -> dict:
    """An exception as the grader's child reports it: type, message, your frames."""
    frames = []
    top = str(root.resolve()) + os.sep
    for frame in traceback.extract_tb(error.__traceback__):
        path = os.path.realpath(frame.filename)
        if path.startswith(top):
            frames.append([os.path.relpath(path, top), frame.lineno, frame.name,
                           (frame.line or "")[:200]])
    return {"type": type(error).__name__, "message": str(error)[:2000], "frames": frames[-8:]}


def build(cls, values: dict):
    """An instance of your NamedTuple class ``cls`` from values by field name."""
    unknown = [f for f in getattr(cls, "_fields", ()) if f not in values]
    if not hasattr(cls, "_fields") or unknown:
        raise NotJudged(f"{cls.__name__} should be a NamedTuple of the skeleton's fields; "
                        f"fields {unknown} are unknown to this check")
    return cls(**{f: values[f] for f in cls._fields})


def bound(signature: inspect.Signature, args, kwargs) -> list:
    """The arguments of a call, in the order of the signature."""
    call = signature.bind(*args, **kwargs)
    call.apply_defaults()
    return list(call.arguments.values())


# -- the reference: torch's equations ------------------------------------------------------------
def _tensor(a, grad: bool = False):
    if a is None or isinstance(a, torch.Tensor):
        return a
    return torch.tensor(np.asarray(a, dtype=np.float64)).requires_grad_(grad)


def _array(t):
    return None if t is None else t.detach().numpy().copy()


class TorchReference:
    """Every study function, with its signature, by torch's equations and autograd; caches
    and gradients in your own NamedTuple classes. A backward function finds its forward's
    inputs under the id of the cache that forward returned."""

    def __init__(self) -> None:
        from torch_impl import equations

        self.equations = equations
        self.saved: dict[int, tuple] = {}

    def named(self, module: str, name: str) -> type:
        return getattr(importlib.import_module(module), name)

    def _cls(self, mode: str, what: str) -> type:
        cell = spec.MODES[mode].cell
        return self.named(f"scratch.functional.{cell}_cell", f"{cell.upper()}{what}")

    def run(self, mode, x_proj, h0, c0, W_hh, b_hh, W_hr, valid=None, reverse=False,
            grad=False, rows=False):
        """One direction over x_proj (T, B, G*H) by the equations (x_proj enters as the
        input with W_ih = I, exactly); rows: b_hh as a (B, G*H) leaf, whose gradient is
        dL/d(h W_hh^T + b_hh)."""
        GH = x_proj.shape[-1]
        leaves = {k: _tensor(v, grad) for k, v in dict(
            x_proj=x_proj, h0=h0, c0=c0, W_hh=W_hh, b_hh=b_hh, W_hr=W_hr).items()}
        b = leaves["b_hh"] if b_hh is not None else torch.zeros(GH, dtype=torch.float64)
        if rows:
            b = leaves["rows"] = (b + torch.zeros((x_proj.shape[1], GH), dtype=torch.float64)
                                  ).detach().requires_grad_(True)
        params = {"weight_ih": torch.eye(GH, dtype=torch.float64), "weight_hh": leaves["W_hh"],
                  "bias_ih": torch.zeros(GH, dtype=torch.float64), "bias_hh": b}
        if W_hr is not None:
            params["weight_hr"] = leaves["W_hr"]
        steps: list = [None] * x_proj.shape[0]
        mask = None if valid is None else torch.as_tensor(np.asarray(valid))
        output, h_n, c_n = self.equations._direction(mode, params, "", leaves["x_proj"],
                                                     leaves["h0"], leaves["c0"], mask,
                                                     reverse, steps)
        return output, h_n, c_n, steps, leaves

    def step_cache(self, mode: str, values: dict):
        values = {k: _array(v) if isinstance(v, torch.Tensor) else v for k, v in values.items()}
        values["nonlinearity"] = spec.MODES[mode].nonlinearity
        return build(self._cls(mode, "StepCache"), values)

    def _save(self, cache, mode, inputs):
        self.saved[id(cache)] = (cache, mode, inputs)
        return cache

    def _inputs(self, cache, name):
        if id(cache) not in self.saved:
            raise RuntimeError(f"{name} was given a cache that its forward did not return")
        return self.saved[id(cache)][1:]

    @staticmethod
    def _upstream(outs, grads):
        return sum((o * _tensor(g)).sum() for o, g in zip(outs, grads)
                   if o is not None and g is not None)

    def function(self, name: str):
        """The reference for the study function ``name``, bound by your function's signature
        (read now: a stand-in takes your function's place later)."""
        function = spec.BY_NAME[name]
        answer = getattr(self, "_" + "_".join(name.split("_")[1:]))(function)
        signature = inspect.signature(function.resolve())

        def reference(*args, **kwargs):
            return answer(*bound(signature, args, kwargs))

        return reference

    # each answers for a function of its signature
    def _step_forward(self, function):
        def forward(*a):
            mode = _mode_of(function, a)
            x_proj, h, c, W_hh, b_hh, W_hr = _step_inputs(mode, a)
            _, h_n, c_n, steps, _ = self.run(mode, x_proj[None], h, c, W_hh, b_hh, W_hr)
            cache = self._save(self.step_cache(mode, steps[0]), mode,
                               (x_proj, h, c, W_hh, b_hh, W_hr))
            return (_array(h_n), _array(c_n), cache) if c is not None else (_array(h_n), cache)

        return forward

    def _step_backward(self, function):
        def backward(*a):
            lstm = function.name.startswith("lstm")
            dh, dc, cache = (a[0], a[1], a[2]) if lstm else (a[0], None, a[1])
            mode, (x_proj, h, c, W_hh, b_hh, W_hr) = self._inputs(cache, function.name)
            _, h_n, c_n, _, leaves = self.run(mode, x_proj[None], h, c, W_hh, b_hh, W_hr,
                                              grad=True, rows=mode == "GRU")
            self._upstream((h_n, c_n), (dh, dc)).backward()
            dx, dh_prev = _array(leaves["x_proj"].grad)[0], _array(leaves["h0"].grad)
            grads = ((dx, dh_prev, _array(leaves["c0"].grad)) if lstm else
                     (dx, _array(leaves["rows"].grad), dh_prev) if mode == "GRU" else
                     (dx, dh_prev))
            cls = self._cls(mode, "StepGrads")  # its fields, in this order
            return build(cls, dict(zip(getattr(cls, "_fields", ()), grads)))

        return backward

    def _cell_forward(self, function):
        step = self.function(function.name.replace("cell", "step"))

        def forward(*a):
            values = dict(zip(function.arguments(), a))
            x_proj = _array(_tensor(values["x"]) @ _tensor(values["W_ih"]).T)
            if values["b_ih"] is not None:
                x_proj = x_proj + values["b_ih"]
            mode = _mode_of(function, a)
            step_args = list(_step_inputs(mode, [x_proj, *a[1:]]))
            *out, step_cache = step(*_step_call(mode, step_args))
            cache = build(self._cls(mode, "CellCache"), dict(
                values, has_bias=values["b_ih"] is not None, step=step_cache))
            self._save(cache, mode, (a, values))
            return (*out, cache)

        return forward

    def _cell_backward(self, function):
        forward_function = spec.BY_NAME[function.name.replace("backward", "forward")]

        def backward(*a):
            lstm = function.name.startswith("lstm")
            dh, dc, cache = (a[0], a[1], a[2]) if lstm else (a[0], None, a[1])
            mode, (forward_args, values) = self._inputs(cache, function.name)
            leaves = {k: _tensor(v, True) if isinstance(v, np.ndarray) else v
                      for k, v in values.items()}
            x_proj = leaves["x"] @ leaves["W_ih"].T
            if leaves["b_ih"] is not None:
                x_proj = x_proj + leaves["b_ih"]
            x, h, c, W_hh, b_hh, W_hr = _step_inputs(
                mode, [x_proj] + [leaves[n] for n in forward_function.arguments()[1:]])
            _, h_n, c_n, _, _ = self.run(mode, x[None], h, c, W_hh, b_hh, W_hr)
            self._upstream((h_n, c_n), (dh, dc)).backward()
            grads = {f"d{n}": None if leaves[n] is None else _array(leaves[n].grad)
                     for n in forward_function.arguments() if isinstance(leaves[n],
                                                                         torch.Tensor)}
            grads.update({f"d{n}": None for n in forward_function.arguments()
                          if leaves[n] is None})
            return build(self._cls(mode, "CellGrads"), grads)

        return backward

    def _forward(self, function):  # direction_forward
        def forward(mode, x_proj, h0, c0, weights, valid, reverse):
            inputs = (x_proj, h0, c0, weights.W_hh, weights.b_hh, weights.W_hr, valid,
                      reverse)
            output, h_n, c_n, steps, _ = self.run(mode, *inputs)
            caches = [self._save(self.step_cache(mode, s), mode, _step_of(s, x_proj, t,
                                                                           weights))
                      for t, s in enumerate(steps)]
            cache = build(self.named("scratch.sequence", "DirectionCache"), dict(
                mode=mode, steps=caches, valid=valid, reverse=reverse))
            self._save(cache, mode, inputs)
            return _array(output), _array(h_n), _array(c_n), cache

        return forward

    def _backward(self, function):  # direction_backward
        def backward(doutput, dh_n, dc_n, cache, weights):
            mode, inputs = self._inputs(cache, function.name)
            output, h_n, c_n, _, leaves = self.run(mode, *inputs, grad=True)
            self._upstream((output, h_n, c_n), (doutput, dh_n, dc_n)).backward()
            grads = {k: None if leaves[k] is None else _array(leaves[k].grad)
                     for k in leaves}
            rec = build(self.named("scratch.sequence", "DirectionGrads"),
                        {"dW_hh": grads["W_hh"], "db_hh": grads["b_hh"],
                         "dW_hr": grads["W_hr"]})
            return grads["x_proj"], grads["h0"], grads["c0"], rec

        return backward

    def method(self, name: str):
        """RNNBase._accumulate: x_proj = X W_ih^T + b_ih by autograd, and the loop's own
        gradients (rec), added into the module's grads."""
        signature = inspect.signature(spec.BY_NAME[name].resolve())

        def accumulate(module, *args, **kwargs):
            layer, direction, X, dx_proj, rec = bound(signature, (module,) + args, kwargs)[1:]
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            params = dict(module.named_parameters())
            W = _tensor(params[f"weight_ih{sfx}"], True)
            b = _tensor(params.get(f"bias_ih{sfx}"), True)
            x_proj = _tensor(X) @ W.T + (0 if b is None else b)
            x_proj.backward(_tensor(dx_proj))
            deltas = {"weight_ih": _array(W.grad), "weight_hh": rec.dW_hh,
                      "bias_ih": None if b is None else _array(b.grad), "bias_hh": rec.db_hh,
                      "weight_hr": rec.dW_hr}
            for key, delta in deltas.items():
                if delta is not None and key + sfx in module._grads:
                    module._grads[key + sfx] += delta

        return accumulate

    def layer(self, case: Case):
        return TorchLayer(self.equations, case)


def _mode_of(function: spec.Function, a: list) -> str:
    cell = function.name.partition("_")[0]
    if cell == "rnn":
        return spec.mode_of("RNN", a[-1])
    return cell.upper()


def _step_inputs(mode: str, a: list):
    """(x_proj, h, c, W_hh, b_hh, W_hr) of a step's arguments (a cell's, with x_proj first)."""
    cell = spec.MODES[mode].cell
    if cell == "lstm":
        x_proj, h, c, *rest = a
        if len(rest) == 5:  # a cell's: W_ih, W_hh, b_ih, b_hh, W_hr
            rest = [rest[1], rest[3], rest[4]]
        return (x_proj, h, c, *rest)
    x_proj, h, *rest = a
    if len(rest) >= 4:  # a cell's: W_ih, W_hh, b_ih, b_hh (, nonlinearity)
        rest = [rest[1], rest[3]]
    return (x_proj, h, None, rest[0], rest[1], None)


def _step_call(mode: str, step: list) -> tuple:
    x_proj, h, c, W_hh, b_hh, W_hr = step
    cell = spec.MODES[mode].cell
    if cell == "lstm":
        return (x_proj, h, c, W_hh, b_hh, W_hr)
    if cell == "rnn":
        return (x_proj, h, W_hh, b_hh, spec.MODES[mode].nonlinearity)
    return (x_proj, h, W_hh, b_hh)


def _step_of(values: dict, x_proj, t: int, weights) -> tuple:
    return (x_proj[t], _array(values["h_prev"]), _array(values["c_prev"]), weights.W_hh,
            weights.b_hh, weights.W_hr)


class TorchLayer:
    """A layer by torch_impl.equations.forward, its gradients by autograd."""

    def __init__(self, equations, case: Case) -> None:
        self.equations, self.case = equations, case
        self.params = make_data(case).params
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, input, hx=None, lengths=None, dropout_masks=None):
        self.leaves = {k: _tensor(v, True) for k, v in self.params.items()}
        self.x = _tensor(input, True)
        lstm = self.case.mode == "LSTM"
        self.hx = None if hx is None else (
            tuple(_tensor(s, True) for s in hx) if lstm else _tensor(hx, True))
        masks = None if dropout_masks is None else [_tensor(m) for m in dropout_masks]
        self.out = self.equations.forward(self.case.mode, self.leaves, self.x, self.hx,
                                          lengths, batch_first=self.case.batch_first,
                                          dropout_masks=masks)
        output, state = self.out
        return _array(output), (tuple(map(_array, state)) if lstm else _array(state))

    def backward(self, grad_output, grad_state=None):
        output, state = self.out
        lstm = self.case.mode == "LSTM"
        states = state if lstm else (state,)
        grads = grad_state if lstm and grad_state is not None else (grad_state, None)
        self.equations_loss = self._loss(output, grad_output, states, grads)
        self.equations_loss.backward()
        for k, leaf in self.leaves.items():
            self.grads[k] += _array(leaf.grad)
        grad_input = _array(self.x.grad)
        if self.hx is None:
            return grad_input, None
        if lstm:
            return grad_input, tuple(_array(s.grad) for s in self.hx)
        return grad_input, _array(self.hx.grad)

    @staticmethod
    def _loss(output, grad_output, states, grads):
        return TorchReference._upstream((output, *states), (grad_output, *grads))


# -- stand-ins -----------------------------------------------------------------------------------
@contextlib.contextmanager
def standing_in(reference: TorchReference, targets):
    """Your study functions of ``targets`` answered by the reference for the duration: every
    module of your package that holds one gets the reference's in its place."""
    undo = []
    for target in targets:
        function = spec.BY_TARGET[target]
        if "." in function.name:
            cls_name, _, method = function.name.partition(".")
            cls = getattr(importlib.import_module(function.module), cls_name)
            undo.append((cls, method, cls.__dict__[method]))
            setattr(cls, method, reference.method(function.name))
            continue
        original = function.resolve()
        stand_in = reference.function(function.name)
        for name, module in list(sys.modules.items()):
            if module is not None and (name == "scratch" or name.startswith("scratch.")):
                for attr, value in list(vars(module).items()):
                    if value is original:
                        undo.append((module, attr, value))
                        setattr(module, attr, stand_in)
    try:
        yield
    finally:
        for owner, attr, value in reversed(undo):
            setattr(owner, attr, value)


def _copied(reference: TorchReference, value):
    """A deep copy of a call's arguments; the reference knows the copied caches too."""
    memo: dict = {}
    copied = copy.deepcopy(value, memo)
    for key, new in list(memo.items()):
        if reference is not None and key in reference.saved:
            reference.saved[id(new)] = reference.saved[key]
    return copied


def run_calls(calls: list[Call], reference, root: Path, words: str,
              tol: float = tolerances.FLOAT64_TOL) -> Failure | None:
    for call in calls:
        try:
            value = spec.BY_TARGET[call.target].resolve()(*_copied(reference, call.args),
                                         **_copied(reference, call.kwargs))
            ok, error = True, None
        except Exception as exc:
            ok, value, error = False, None, error_of(exc, root)
        failure = judge(call, ok, value, error, words, tol=tol)
        if failure is not None:
            return failure
    return None


def drive_layer(package, request: dict, root: Path) -> tuple[dict, dict | None]:
    """What the grader's child does with a layer request: build, load, forward, backward,
    the gradients (twice over when asked)."""
    done: dict = {}
    forward, backward = request["forward"], request["backward"]
    try:
        module = getattr(package, request["cls"])(*request["args"], **request["kwargs"])
        module.load_state_dict(copy.deepcopy(request["state"]))
        module.train(request["train"])
        for key in ("grads", "grads_twice")[:1 + request["twice"]]:
            out = module.forward(*copy.deepcopy(forward["args"]),
                                 **copy.deepcopy(forward["kwargs"]))
            done.setdefault("forward", out)
            done.setdefault("backward", module.backward(*copy.deepcopy(backward["args"])))
            done[key] = {name: module.grads[name].copy() for name in request["state"]}
        return done, None
    except Exception as exc:
        return done, error_of(exc, root)


# -- an item -------------------------------------------------------------------------------------
def run_item(item: spec.ItemSpec, package, root: Path) -> tuple[Failure | None, int]:
    """(the first failure or None, how many cases ran) of an item on its public cases."""
    if torch is None:
        return fd_item(item, package, root)
    reference = TorchReference()
    level = "cell" if any(o["level"] == "cell" for o in item.cases) else "sequence"
    for count, case in enumerate(public_cases(item), start=1):
        if isinstance(case, Case):
            twice = "RNNBase._accumulate" in {f.name for f in item.grades}
            request, expected = layer_request(case, reference, twice)
            with standing_in(reference, item.stand_ins("layer")):
                reached, error = drive_layer(package, request, root)
            failure = judge_layer(case, request, expected, reached, error)
        else:
            failure = None
            for way in ("forward", "backward"):
                calls = calls_of(item, case, way, reference)
                with standing_in(reference, item.stand_ins(level)):
                    failure = failure or run_calls(calls, reference, root, case.describe())
        if failure is not None:
            return failure, count
    return None, count


# -- without torch: finite differences of your own forward ------------------------------------
class OwnReference:
    """Your own forward functions, to build a backward function's arguments with (the
    backward's answer is then found by finite differences, not asked of anything)."""

    def function(self, name: str):
        if name.endswith("backward"):
            return lambda *args, **kwargs: None
        return spec.BY_NAME[name].resolve()

    def named(self, module: str, name: str) -> type:
        return getattr(importlib.import_module(module), name)


def fd_item(item: spec.ItemSpec, package, root: Path) -> tuple[Failure | None, int]:
    """An item of backward functions only, against central differences of your forwards."""
    if any(f.name.endswith("forward") or f.level == "layer" for f in item.grades):
        raise NotJudged(CONVENTIONS)
    for count, case in enumerate(public_cases(item), start=1):
        try:
            calls = calls_of(item, case, "backward", OwnReference())
        except Exception as exc:
            raise NotJudged(f"its arguments come from your own forward functions, which "
                            f"raised {type(exc).__name__}: {exc}") from None
        for call in calls:
            call = dataclasses.replace(call, expected=fd_expected(call, case))
            failure = run_calls([call], None, root, case.describe(), tolerances.FD_TOL)
            if failure is not None:
                failure.problem += (" (against central differences of your own forward, "
                                    f"allowed {tolerances.FD_TOL:g} * max(1, max |value|))")
                return failure, count
    return None, count


def fd_expected(call: Call, case):
    """What a backward call should return: central differences of its forward (by the
    positions of the study code's contract; the GRU step's dgh has none of its own)."""
    d = make_function_data(case)
    function = spec.BY_NAME[call.function]
    forward = spec.BY_NAME[call.function.replace("backward", "forward")]
    own = OwnReference()
    if function.level == "direction":
        weights = own.named("scratch.sequence", "DirectionWeights")(d.W_hh, d.b_hh, d.W_hr)
        args: tuple = (case.mode, d.x_proj, d.h0, d.c0, weights, d.valid, case.reverse)
        upstream = (d.doutput, d.dh_n, d.dc_n)
    else:
        args = (step_args(case.mode, d, d.h0, d.x_proj[0]) if function.level == "step"
                else cell_args(case.mode, d, d.x[0], d.h0))
        upstream = (d.doutput[0], d.dc_n)

    def loss() -> float:
        out = forward.resolve()(*args)[:-1]
        return float(sum(np.sum(o * u) for o, u in zip(out, upstream)
                         if o is not None and u is not None))

    def grad(a):
        return numerical_gradient(loss, a) if isinstance(a, np.ndarray) else None

    if function.level == "direction":
        rec = own.named("scratch.sequence", "DirectionGrads")(*map(grad, weights))
        return grad(args[1]), grad(args[2]), grad(args[3]), rec
    if function.level == "cell":
        values = dict(zip(forward.arguments(), args))
        cls = own.named(forward.module, f"{spec.MODES[case.mode].cell.upper()}CellGrads")
        return build(cls, {f"d{n}": grad(v) for n, v in values.items()})
    if case.mode == "GRU":
        return grad(args[0]), ANYTHING, grad(args[1])
    return tuple(grad(a) for a in args[:3 if case.mode == "LSTM" else 2])


# -- the report ----------------------------------------------------------------------------------
def visible_items() -> list[spec.ItemSpec]:
    """The items the grader shows: the handout's list (VISIBLE_FILE beside this file), or all."""
    shipped = Path(__file__).with_name(spec.VISIBLE_FILE)
    if shipped.is_file():
        ids = shipped.read_text().split()
        return [i for i in spec.ITEMS if i.id in ids]
    return list(spec.ITEMS)



def run_check(root: Path, only: list[str] | None = None, out=sys.stdout) -> int:
    start = time.perf_counter()
    spec.output_names()  # read from the reference's code, before your scratch is imported
    how = (f"torch {torch.__version__}: the grader's items on its public cases, against "
           "torch's equations" if torch is not None else
           "torch is not installed: only the items of backward functions are judged, against "
           "central differences of your own forward functions (pip install torch for all)")
    print(f"parity check: {root}\n({how})", file=out)
    try:
        package = load_package(root)
    except Exception as error:
        print(f"\nFAIL: your scratch package does not import: {type(error).__name__}: "
              f"{error}", file=out)
        return 1
    counts = {"PASS": 0, "FAIL": 0, "NOT JUDGED": 0}
    failed = []
    for item in visible_items():
        if only is not None and item.id not in only:
            continue
        try:
            failure, cases = run_item(item, package, root)
            status = "PASS" if failure is None else "FAIL"
        except NotJudged as why:
            failure, cases, status = None, 0, "NOT JUDGED"
            text = str(why)
        counts[status] += 1
        print(f"\n{status}  {item.title} [{item.id}]" + (
            f"  ({cases} cases)" if status == "PASS" else ""), file=out)
        if failure is not None:
            failed.append(item.id)
            text = failure_text(failure, item)
        if status != "PASS":
            print("\n".join("    " + line for line in text.splitlines()), file=out)
    print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['NOT JUDGED']} not "
          f"judged ({time.perf_counter() - start:.1f} s)", file=out)
    if failed:
        print("failing: " + ", ".join(failed), file=out)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity check",
        description="Run the grader's visible items on its public cases against torch's "
                    "equations (backward items against finite differences of your own "
                    "forward functions without torch), and read its feedback.")
    p.add_argument("dir", nargs="?", default=".", type=Path,
                   help="the directory holding your scratch/ package (default: here)")
    p.add_argument("--only", default=None, help="comma-separated item ids (e.g. bptt)")
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
