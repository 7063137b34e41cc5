"""The reference, served to a child for the functions an item does not grade.

An item grades some functions of the submission; the functions those call but the item does
not grade run as the reference, here in the grader, so that a mistake elsewhere does not cost
this item its points. The child sends the arguments (arrays and named tuples), the grader runs
the real ``scratch`` function on them and sends the arrays back: the child never holds the
reference's code, only its answers to its own calls.

Named tuples travel by class name; ``resolve`` turns one into the reference's class of that
name (``RNNStepCache``, ``DirectionCache``, ...), so the reference runs on its own types.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

import scratch
from parity.grading import protocol

STEP_FUNCTIONS = tuple(
    f"scratch.functional.{kind}_cell:{kind}_step_{way}"
    for kind in ("rnn", "lstm", "gru") for way in ("forward", "backward")
)
DIRECTION_FUNCTIONS = ("scratch.sequence:direction_forward", "scratch.sequence:direction_backward")
ACCUMULATE = "scratch.recurrent:RNNBase._accumulate"
METHODS = (ACCUMULATE,)
ALL = STEP_FUNCTIONS + DIRECTION_FUNCTIONS + METHODS

MAX_ELEMENTS = 1 << 20  # per array argument: the cases are small, an oracle call is too


def setup_list() -> list[dict]:
    """What the child installs stubs for (each runs the submission's own code unless a request
    lists it as an oracle)."""
    return [{"name": name, "method": name in METHODS} for name in ALL]


def resolve(module: str, name: str, fields: tuple):
    """The reference's NamedTuple class for a class name sent by a child, or None."""
    if not (module == "scratch" or module.startswith("scratch.")):
        return None
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    cls = getattr(mod, name, None)
    if isinstance(cls, type) and issubclass(cls, tuple) and tuple(getattr(cls, "_fields", ())) \
            == fields:
        return cls
    return None


def _target(name: str):
    module, _, qualname = name.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _check_sizes(value, where="argument") -> None:
    if isinstance(value, np.ndarray):
        if value.size > MAX_ELEMENTS or value.ndim > 4:
            raise ValueError(f"{where} of shape {value.shape} is far larger than any case")
    elif isinstance(value, (tuple, list)):
        for item in value:
            _check_sizes(item, where)
    elif isinstance(value, dict):
        for item in value.values():
            _check_sizes(item, where)


def _function_oracle(name: str) -> Callable[[dict], object]:
    """Runs the reference function; answers {"result": its value, "written": {index: array}}
    where "written" holds the argument arrays it wrote into (an ``out=`` array, say), by
    their index in ``protocol.arrays_in(payload)``, for the child to copy back."""
    function = _target(name)

    def serve(payload: dict):
        args, kwargs = payload.get("args", ()), payload.get("kwargs", {})
        if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
            raise TypeError("malformed oracle call")
        _check_sizes(args)
        _check_sizes(kwargs)
        arrays = protocol.arrays_in({"args": args, "kwargs": kwargs})
        before = [a.copy() if isinstance(a, np.ndarray) else None for a in arrays]
        result = function(*args, **kwargs)
        written = {
            str(i): a for i, (a, old) in enumerate(zip(arrays, before))
            if old is not None and not np.array_equal(a, old, equal_nan=a.dtype.kind in "fc")
        }
        return {"result": result, "written": written}

    return serve


_MODULES: dict[tuple, scratch.RNNBase] = {}


def _reference_module(config: dict) -> scratch.RNNBase:
    """A reference layer of the same configuration (weights do not matter: only the
    gradient bookkeeping of the method is run)."""
    key = tuple(sorted(config.items()))
    if key not in _MODULES:
        mode = config["mode"]
        common = dict(num_layers=int(config["num_layers"]), bias=bool(config["bias"]),
                      bidirectional=bool(config["bidirectional"]), seed=0)
        sizes = (int(config["input_size"]), int(config["hidden_size"]))
        if max(sizes) * common["num_layers"] > 4096:
            raise ValueError(f"a layer of sizes {sizes} is far larger than any case")
        if mode == "LSTM":
            module = scratch.LSTM(*sizes, proj_size=int(config["proj_size"]), **common)
        elif mode == "GRU":
            module = scratch.GRU(*sizes, **common)
        elif mode in ("RNN_TANH", "RNN_RELU"):
            module = scratch.RNN(*sizes, nonlinearity="tanh" if mode == "RNN_TANH" else "relu",
                                 **common)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        _MODULES[key] = module
    return _MODULES[key]


def _method_oracle(name: str) -> Callable[[dict], object]:
    method_name = name.rpartition(".")[2]

    def serve(payload: dict):
        config, args = payload["config"], payload.get("args", ())
        kwargs = payload.get("kwargs", {})
        _check_sizes(args)
        module = _reference_module(config)
        module.zero_grad()
        getattr(module, method_name)(*args, **kwargs)
        return {key: grad.copy() for key, grad in module.grads.items()}

    return serve


def reference_oracles() -> dict[str, Callable[[dict], object]]:
    """name -> the grader-side server of that function's reference."""
    served = {name: _function_oracle(name) for name in STEP_FUNCTIONS + DIRECTION_FUNCTIONS}
    served.update({name: _method_oracle(name) for name in METHODS})
    return served
