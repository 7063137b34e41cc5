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
    check_case,
    failure_text,
    judge,
    places,
)
from parity.case import Case, make_data, public_cases
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


# -- the reference -------------------------------------------------------------------------------
# What a backward function returns where its name is not "d" + its forward's argument's: the
# gradient of the input projection, of the GRU's gh = h W_hh^T + b_hh (a step's b_hh taken as
# one row per sequence) and of a direction's initial state.
ALIASES = {"dpre": "dx_proj", "dgates": "dx_proj", "dgh": "db_hh", "dh_next": "dh0",
           "dc_next": "dc0"}


def _floats(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _flat(values: dict) -> dict:
    """values with the fields of its ``weights`` (a DirectionWeights) beside the others."""
    return {**values, **values["weights"]._asdict()} if "weights" in values else values


def _dot(outs, grads):
    """The loss a backward function differentiates: sum(out * grad) over (nested) pairs of
    arrays or tensors, a pair with a None left out."""
    if outs is None or grads is None:
        return 0.0
    if isinstance(outs, (tuple, list)):
        return sum(_dot(o, g) for o, g in zip(outs, grads))
    return (outs * grads).sum()


class Reference:
    """Every study function, bound by your function's signature, its arguments then known by
    their places (``calls.places``: your names for them are yours). A forward's cache is
    remembered with the arguments it came from; a backward function finds them under the id
    of the cache it is handed and answers the gradients of sum(output * upstream) for its
    forward's arguments, each named "d" + your name for the argument (or ALIASES), in your
    own NamedTuple classes. A subclass says how a forward is answered and how its gradients
    are found."""

    def __init__(self) -> None:
        self.saved: dict[int, tuple] = {}
        self.signatures: dict[str, inspect.Signature] = {}

    def signature(self, name: str) -> inspect.Signature:
        """Your function's signature, as read before a stand-in took its place."""
        if name not in self.signatures:
            self.signatures[name] = inspect.signature(spec.BY_NAME[name].resolve())
        return self.signatures[name]

    def function(self, name: str):
        function, signature = spec.BY_NAME[name], self.signature(name)
        if function.level == "layer":  # the one layer stand-in
            answer = self.accumulate
        else:
            answer = self.backward if name.endswith("backward") else self.forward

        def reference(*args, **kwargs):
            call = signature.bind(*args, **kwargs)
            call.apply_defaults()
            return answer(function, dict(zip(places(function), call.arguments.values())))

        return reference

    def save(self, cache, function: spec.Function, inputs: dict):
        self.saved[id(cache)] = (cache, function, inputs)
        return cache

    def backward(self, function: spec.Function, a: dict):
        if id(a["cache"]) not in self.saved:
            raise RuntimeError(f"{function.name} was given a cache that its forward did not "
                               "return")
        _, forward, inputs = self.saved[id(a["cache"])]
        upstream = [a[name] for name in list(a)[:list(a).index("cache")]]
        grads = self.gradients(forward, dict(inputs), upstream)
        grads.update({alias: grads.get(name) for alias, name in ALIASES.items()})
        yours = self.signature(forward.name).parameters
        grads.update({"d" + mine: grads.get("d" + place)
                      for mine, place in zip(yours, places(forward))})
        cls, names = function.named_tuple("Grads"), spec.output_names()[function.name]
        if names is None:
            return build(cls, grads)
        grads["grads"] = build(cls, grads)
        return tuple(grads[name] for name in names)


# -- with torch: torch's equations and autograd --------------------------------------------------
def _map(f, value):
    """f of each item of nested tuples and lists (a NamedTuple keeps its class)."""
    if not isinstance(value, (tuple, list)):
        return f(value)
    items = [_map(f, v) for v in value]
    return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)


def _tensor(value, grad: bool = False):
    """A float array as a float64 tensor (a leaf with grad); anything else as it is."""
    if not _floats(value):
        return value
    return torch.tensor(value, dtype=torch.float64).requires_grad_(grad)


def _array(value, grad: bool = False):
    """A tensor (with grad: its gradient) as an array; anything else as it is (None)."""
    if not isinstance(value, torch.Tensor):
        return None if grad else value
    value = value.grad if grad else value
    return None if value is None else value.detach().numpy().copy()


class TorchReference(Reference):
    """The reference by torch's equations (``torch_impl.equations``) and autograd."""

    def __init__(self) -> None:
        super().__init__()
        from torch_impl import equations

        self.equations = equations

    def run(self, function: spec.Function, a: dict):
        """A forward study function by the equations, on a's arrays or tensors: ({output name:
        tensor}, each step's values: its inputs and what equations._direction keeps, the
        mode). A step or a cell is a direction of one step, x_proj its input with W_ih = I."""
        a = {k: _map(_tensor, v) for k, v in a.items()}
        w = _flat(a)
        mode = a.get("mode") or spec.mode_of(
            spec.mode_named(function.name.partition("_")[0]).cls, a.get("nonlinearity"))
        x_proj = a.get("x_proj")
        if function.level == "cell":
            x_proj = a["x"] @ a["W_ih"].T + (0 if a["b_ih"] is None else a["b_ih"])
        x_proj = x_proj if function.level == "direction" else x_proj[None]
        zeros = torch.zeros(x_proj.shape[-1], dtype=torch.float64)
        params = {"weight_ih": torch.eye(len(zeros), dtype=torch.float64), "bias_ih": zeros,
                  "weight_hh": w["W_hh"], "bias_hh": zeros if w["b_hh"] is None else w["b_hh"],
                  "weight_hr": w.get("W_hr")}
        valid, steps = a.get("valid"), [None] * len(x_proj)
        output, h, c = self.equations._direction(
            mode, params, "", x_proj, a.get("h0", a.get("h_prev")), a.get("c0", a.get("c_prev")),
            None if valid is None else torch.as_tensor(valid), a.get("reverse", False), steps)
        for t, values in enumerate(steps):
            values.update(x_proj=x_proj[t], W_hh=w["W_hh"], b_hh=w["b_hh"], W_hr=w.get("W_hr"),
                          nonlinearity=spec.MODES[mode].nonlinearity)
        return {"output": output, "h": h, "c": c}, steps, mode

    def forward(self, function: spec.Function, a: dict):
        """Its outputs as arrays, and its cache, each step's remembered as the step forward's."""
        produced, steps, mode = self.run(function, a)
        step = spec.BY_NAME[spec.MODES[mode].cell + "_step_forward"]
        caches = []
        for values in steps:
            values = {k: _array(v) for k, v in values.items()}
            inputs = {place: values[place] for place in places(step)}
            caches.append(self.save(build(step.named_tuple("Cache"), values), step, inputs))
        values = dict(a, has_bias=a.get("b_ih") is not None, step=caches[0], steps=caches)
        cache = caches[0] if function.level == "step" else build(
            function.named_tuple("Cache"), values)
        names = spec.output_names()[function.name][:-1]
        return (*(_array(produced[name]) for name in names), self.save(cache, function, a))

    def gradients(self, forward: spec.Function, inputs: dict, upstream: list) -> dict:
        leaves = {k: _map(lambda v: _tensor(v, True), v) for k, v in inputs.items()}
        if forward.level == "step":  # b_hh as one row per sequence: its gradient is dL/dgh
            b_hh = 0 if inputs["b_hh"] is None else inputs["b_hh"]
            leaves["b_hh"] = _tensor(np.zeros_like(inputs["x_proj"]) + b_hh, True)
        produced, _, _ = self.run(forward, leaves)
        outs = [produced[name] for name in spec.output_names()[forward.name][:-1]]
        _dot(outs, _map(_tensor, upstream)).backward()
        return {"d" + k: _array(v, grad=True) for k, v in _flat(leaves).items()}

    def accumulate(self, function: spec.Function, a: dict) -> None:
        """RNNBase._accumulate: dW_ih and db_ih by autograd of x_proj = X W_ih^T + b_ih, and
        the loop's own gradients (rec), added into the module's grads."""
        module, rec = a["self"], a["rec"]
        sfx = f"_l{a['layer']}" + ("_reverse" if a["direction"] else "")
        params = dict(module.named_parameters())
        W, b = (_tensor(params.get(key + sfx), True) for key in ("weight_ih", "bias_ih"))
        (_tensor(a["X"]) @ W.T + (0 if b is None else b)).backward(_tensor(a["dx_proj"]))
        deltas = {"weight_ih": _array(W, True), "bias_ih": _array(b, True),
                  "weight_hh": rec.dW_hh, "bias_hh": rec.db_hh, "weight_hr": rec.dW_hr}
        for key, delta in deltas.items():
            if delta is not None and key + sfx in module._grads:
                module._grads[key + sfx] += delta

    def layer(self, case: Case):
        return TorchLayer(self.equations, case)


class TorchLayer:
    """A layer of the case by torch_impl.equations.forward, its gradients by autograd."""

    def __init__(self, equations, case: Case) -> None:
        self.equations, self.case = equations, case
        self.leaves = {k: _tensor(v, True) for k, v in make_data(case).params.items()}

    def forward(self, input, hx=None, lengths=None, dropout_masks=None):
        self.inputs = _map(lambda v: _tensor(v, True), (input, hx))
        self.out = self.equations.forward(self.case.mode, self.leaves, *self.inputs, lengths,
                                          batch_first=self.case.batch_first,
                                          dropout_masks=_map(_tensor, dropout_masks))
        return _map(_array, self.out)

    def backward(self, grad_output, grad_state=None):
        _dot(self.out, _map(_tensor, (grad_output, grad_state))).backward()
        self.grads = {k: _array(v, grad=True) for k, v in self.leaves.items()}
        return _map(lambda v: _array(v, grad=True), self.inputs)


# -- without torch: finite differences of your own forward ---------------------------------------
class FiniteDifferences(Reference):
    """Your own forward functions, and the gradients of their loss by central differences."""

    def forward(self, function: spec.Function, a: dict):
        out = function.resolve()(*a.values())
        self.save(out[-1], function, a)
        return out

    def gradients(self, forward: spec.Function, inputs: dict, upstream: list) -> dict:
        def loss() -> float:
            return float(_dot(forward.resolve()(*inputs.values())[:-1], upstream))

        grads = {"d" + k: numerical_gradient(loss, v) if _floats(v) else None
                 for k, v in _flat(inputs).items()}
        if not all(np.isfinite(g).all() for g in grads.values() if g is not None):
            raise NotJudged(f"your {forward.name} gives a NaN or an infinity on this item's "
                            "public cases, so central differences of it judge nothing")
        if forward.level == "step":  # the rows of b_hh, the GRU's dgh: not judged
            grads["db_hh"] = ANYTHING
        return grads


def fd_case(item: spec.ItemSpec, case, root: Path) -> Failure | None:
    """A case of an item of backward functions, against central differences of your forwards."""
    try:
        calls = calls_of(item, case, "backward", FiniteDifferences())
    except NotJudged:
        raise
    except Exception as exc:
        raise NotJudged(f"its arguments come from your own forward functions, which "
                        f"raised {type(exc).__name__}: {exc}") from None
    failure = run_calls(calls, None, root, case.describe(), tolerances.FD_TOL)
    if failure is not None:
        failure.problem += (" (against central differences of your own forward, "
                            f"allowed {tolerances.FD_TOL:g} * max(1, max |value|))")
    return failure


# -- stand-ins -----------------------------------------------------------------------------------
@contextlib.contextmanager
def standing_in(reference: Reference, targets):
    """Your study functions of ``targets`` answered by the reference for the duration: every
    module of your package that holds one gets the reference's in its place."""
    undo = []
    for target in targets:
        function = spec.BY_TARGET[target]
        stand_in = reference.function(function.name)
        if "." in function.name:
            cls_name, _, method = function.name.partition(".")
            cls = getattr(function.namespace(), cls_name)
            undo.append((cls, method, cls.__dict__[method]))
            setattr(cls, method, stand_in)
            continue
        original = function.resolve()
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


def _copied(reference: Reference | None, value):
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
    if torch is None and any(f.name.endswith("forward") or f.level == "layer"
                             for f in item.grades):
        raise NotJudged(CONVENTIONS)
    reference = None if torch is None else TorchReference()

    # the submission runs here, in this process, its stand-ins swapped in meanwhile
    def layer_here(request: dict, stand_ins: tuple[str, ...]) -> tuple[dict, dict | None, list]:
        with standing_in(reference, stand_ins):
            reached, error = drive_layer(package, request, root)
        return reached, error, []

    def calls_here(calls: list[Call], case_words: str,
                   stand_ins: tuple[str, ...]) -> Failure | None:
        with standing_in(reference, stand_ins):
            return run_calls(calls, reference, root, case_words)

    for count, case in enumerate(public_cases(item), start=1):
        if reference is None:
            failure = fd_case(item, case, root)
        else:
            failure = check_case(item, case, reference, layer_here, calls_here)
        if failure is not None:
            return failure, count
    return None, count


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
