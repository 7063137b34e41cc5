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

import functools
import importlib
from collections.abc import Callable

import numpy as np

import scratch
from parity import spec
from parity.grading import protocol

ALL = spec.stand_in_targets()  # every study function some item runs as the reference
STEP_FUNCTIONS = tuple(t for t in ALL if spec.BY_TARGET[t].level == "step")
METHODS = tuple(t for t in ALL if "." in t.partition(":")[2])

# What an oracle call may carry, from the sizes of the graded cases (cases.py): every array
# of a case is at most a few hundred elements, so an argument far larger than that is no case's.
MAX_DIM = 64  # any one axis of an argument
MAX_ELEMENTS = 1 << 12  # one array argument
MAX_CALL_ELEMENTS = 1 << 16  # all of one call's arguments together
MAX_LAYER_SIZE = 16  # input_size, hidden_size, proj_size of a layer the method oracle builds
MAX_LAYERS = 4
_REFERENCE_MODULES = frozenset({
    "scratch", "scratch.sequence", "scratch.recurrent", "scratch.functional",
    "scratch.functional.rnn_cell", "scratch.functional.lstm_cell",
    "scratch.functional.gru_cell"})


def setup_list() -> list[dict]:
    """What the child installs stubs for (each runs the submission's own code unless a request
    lists it as an oracle)."""
    return [{"name": name, "method": name in METHODS} for name in ALL]


def resolve(module: str, name: str, fields: tuple):
    """The reference's NamedTuple class for a class name sent by a child, or None."""
    if module not in _REFERENCE_MODULES:
        return None
    mod = importlib.import_module(module)
    cls = getattr(mod, name, None)
    if isinstance(cls, type) and issubclass(cls, tuple) and tuple(getattr(cls, "_fields", ())) \
            == fields:
        return cls
    return None


def _arguments(payload: dict, max_ndim: int = 4) -> tuple:
    """(args, kwargs) of an oracle call, refused where larger than any graded case's (before
    the reference runs): also arrays of more axes than the function's arguments have (they
    broadcast into far larger ones) and dtypes no case uses (clongdouble is 32 bytes an
    element)."""
    args, kwargs = payload.get("args", ()), payload.get("kwargs", {})
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise TypeError("malformed oracle call")
    total = 0
    for array in protocol.arrays_in((args, kwargs)):
        array = np.asarray(array)
        if array.dtype not in (np.float64, np.bool_):
            raise ValueError(f"an argument of dtype {array.dtype}: the cases are float64")
        if array.size > MAX_ELEMENTS or array.ndim > max_ndim or any(
                n > MAX_DIM for n in array.shape):
            raise ValueError(f"an argument of shape {array.shape} is far larger than any case")
        total += array.size
    if total > MAX_CALL_ELEMENTS:
        raise ValueError("the arguments are far larger than any case")
    return args, kwargs


def _function_oracle(name: str) -> Callable[[dict], object]:
    """Runs the reference function on the child's arguments and answers its result."""
    function = spec.BY_TARGET[name].resolve()
    max_ndim = 2 if name in STEP_FUNCTIONS else 4  # a step's arrays are (B, .) or (., .)

    def serve(payload: dict):
        args, kwargs = _arguments(payload, max_ndim)
        return function(*args, **kwargs)

    return serve


def _layer_config(config) -> tuple:
    """(mode, input_size, hidden_size, num_layers, bias, bidirectional, proj_size) of a layer
    a child describes, checked against the sizes of the graded cases."""
    if not isinstance(config, dict):
        raise TypeError("malformed layer description")
    mode = config.get("mode")
    if mode not in spec.MODES:
        raise ValueError(f"unknown mode {str(mode)[:40]!r}")
    sizes = []
    for key, low, high in (("input_size", 1, MAX_LAYER_SIZE), ("hidden_size", 1, MAX_LAYER_SIZE),
                           ("num_layers", 1, MAX_LAYERS), ("proj_size", 0, MAX_LAYER_SIZE)):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{key}={str(value)[:40]} is outside the graded cases' sizes")
        sizes.append(value)
    flags = [config.get(key) for key in ("bias", "bidirectional")]
    if not all(isinstance(flag, bool) for flag in flags):
        raise ValueError("bias and bidirectional must be bools")
    return (mode, sizes[0], sizes[1], sizes[2], flags[0], flags[1], sizes[3])


@functools.lru_cache(maxsize=16)  # bounded: a child inventing layers does not grow the grader
def _reference_module(key: tuple) -> scratch.RNNBase:
    """A reference layer of the same configuration (weights do not matter: only the
    gradient bookkeeping of the method is run)."""
    mode, input_size, hidden_size, num_layers, bias, bidirectional, proj_size = key
    return getattr(scratch, spec.MODES[mode].cls)(
        input_size, hidden_size, num_layers=num_layers, bias=bias, bidirectional=bidirectional,
        seed=0, **spec.layer_options(mode, proj_size))


def _method_oracle(name: str) -> Callable[[dict], object]:
    method_name = name.rpartition(".")[2]

    def serve(payload: dict):
        args, kwargs = _arguments(payload)
        module = _reference_module(_layer_config(payload.get("config")))
        module.zero_grad()
        getattr(module, method_name)(*args, **kwargs)
        return {key: grad.copy() for key, grad in module.grads.items()}

    return serve


def reference_oracles() -> dict[str, Callable[[dict], object]]:
    """name -> the grader-side server of that function's reference."""
    return {name: _method_oracle(name) if name in METHODS else _function_oracle(name)
            for name in ALL}


# -- which case an oracle call belongs to ---------------------------------------------------------
PARAMETER_PREFIXES = ("W_", "b_")  # the study core names its weights and biases so


def parameters_of(name: str, payload: dict) -> list:
    """The weights and biases an oracle call carries, by the reference's argument names (and
    the fields of a ``DirectionWeights``): what must be the graded case's own."""
    import inspect

    if name in METHODS or not isinstance(payload, dict):
        return []
    signature = inspect.signature(spec.BY_TARGET[name].resolve())
    try:
        bound = signature.bind(*payload.get("args", ()), **payload.get("kwargs", {}))
    except TypeError:  # the call cannot run; the oracle says so
        return []
    found = []
    for argument, value in bound.arguments.items():
        if argument.startswith(PARAMETER_PREFIXES):
            found.append(value)
        elif argument == "weights" and isinstance(value, tuple) and hasattr(value, "_fields"):
            found += [getattr(value, f) for f in value._fields if f.startswith(PARAMETER_PREFIXES)]
    return [value for value in found if value is not None]
