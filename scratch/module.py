"""The base class of every scratch module: parameters, gradients, state dicts, modes.

scratch has no autograd tensors. A module keeps its parameters in one dict of NumPy arrays
and their gradients in another, keyed alike; ``backward`` *adds* into the gradients, as torch
accumulates ``.grad``, and ``zero_grad`` clears them. Parameters are updated in place (by
``load_state_dict`` and by the optimizers), so an array taken from ``named_parameters()``
stays the module's own.

As on torch.nn.Module, a parameter is also an attribute (``lstm.weight_ih_l0``): reading it
gives the module's own array, the one forward reads; assigning replaces it. Where torch accepts
a Parameter of any shape or dtype and fails in a later forward, here the assignment is checked
first, as ``load_state_dict`` checks (shape, dtype, finite values), and refused with an error
that names the parameter. ``double()`` and ``float()`` convert every parameter and gradient.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np

SUPPORTED_DTYPES = (np.float32, np.float64)


class CallOrderError(RuntimeError, ValueError):
    """backward() without a forward() to go back through (or a second time for one forward)."""


def check_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in [np.dtype(d) for d in SUPPORTED_DTYPES]:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_parameter_value(label: str, value: np.ndarray, param: np.ndarray) -> None:
    """A new value for ``param``: its shape and dtype, and finite. ``label`` names it."""
    if value.shape != param.shape:
        raise ValueError(f"{label} has shape {value.shape}, expected {param.shape}")
    if value.dtype != param.dtype:
        raise TypeError(
            f"{label} has dtype {value.dtype}, expected {param.dtype} "
            f"(convert it with .astype(np.{param.dtype}))"
        )
    if not np.all(np.isfinite(value)):
        raise ValueError(f"{label} holds NaN or infinite values")


class Module:
    """Base class: a tree of modules, each holding named parameters and their gradients."""

    def __init__(self) -> None:
        self._parameters: OrderedDict[str, np.ndarray] = OrderedDict()
        self._grads: OrderedDict[str, np.ndarray] = OrderedDict()
        self._absent_parameters: set[str] = set()  # names that read as None (see below)
        self._modules: OrderedDict[str, Module] = OrderedDict()
        self.training = True
        self._saved: object = None  # what the last forward kept for its backward
        self._backward_done = False

    # -- building -------------------------------------------------------------------------
    def register_parameter(self, name: str, value: np.ndarray | None) -> None:
        """A parameter and its zero gradient. None, as in torch, declares a parameter this
        configuration lacks (a cell's bias_ih with bias=False): it reads as None."""
        if value is None:
            self._absent_parameters.add(name)
            return
        self._parameters[name] = value
        self._grads[name] = np.zeros_like(value)

    # -- parameters as attributes (torch.nn.Module's __getattr__ and __setattr__) -----------
    def __getattr__(self, name: str) -> np.ndarray | None:
        """``module.weight_ih_l0``: the parameter array itself. Python calls this only for a
        name that is not a plain attribute."""
        parameters = self.__dict__.get("_parameters", {})  # empty while a copy is being made
        if name in parameters:
            return parameters[name]
        if name in self.__dict__.get("_absent_parameters", ()):
            return None
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        """``module.weight_ih_l0 = array`` replaces the parameter (checked first); any other
        name is a plain attribute. A plain attribute of a parameter's name (Linear's ``bias``
        flag) stays plain, on reading and on assigning."""
        if name in self.__dict__:
            object.__setattr__(self, name, value)
        elif name in self.__dict__.get("_parameters", ()):
            self._replace_parameter(name, value)
        elif name in self.__dict__.get("_absent_parameters", ()):
            raise AttributeError(
                f"{type(self).__name__} was built without {name} (bias=False): build it with "
                f"bias=True to have one"
            )
        else:
            object.__setattr__(self, name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | self._absent_parameters)

    def _replace_parameter(self, name: str, value) -> None:
        """Make ``value`` (the array itself, not a copy) the parameter ``name``, after checking
        it. A new array's gradient starts at zero, as a new torch Parameter's .grad is None."""
        current = self._parameters[name]
        if value is current:  # lstm.weight_ih_l0 *= 2 assigns the parameter to itself
            return
        label = f"{type(self).__name__}.{name}"
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"cannot assign {type(value).__name__!r} as parameter {name!r} "
                f"(numpy.ndarray of shape {current.shape} expected)"
            )
        _check_parameter_value(label, value, current)
        if not value.flags.writeable:
            raise ValueError(f"{label} must be writeable (the optimizers update parameters in "
                             f"place): assign a copy, np.array(value)")
        for other, param in self._parameters.items():
            if other != name and np.may_share_memory(value, param):
                raise ValueError(
                    f"{label} would share memory with {other}: each parameter gets its own "
                    f"gradient and update, so tied weights would be updated twice; assign a copy"
                )
        self._parameters[name] = value
        self._grads[name] = np.zeros_like(value)

    def add_module(self, name: str, module: Module) -> None:
        self._modules[name] = module

    # -- parameters and gradients ---------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) pairs in torch's order; the arrays are the module's own."""
        for name, value in self._parameters.items():
            yield prefix + name, value
        for child_name, child in self._modules.items():
            yield from child.named_parameters(prefix + child_name + ".")

    def parameters(self) -> list[np.ndarray]:
        return [value for _, value in self.named_parameters()]

    def named_grads(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name, value in self._grads.items():
            yield prefix + name, value
        for child_name, child in self._modules.items():
            yield from child.named_grads(prefix + child_name + ".")

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Gradients keyed like the state dict; the arrays are the module's own."""
        return dict(self.named_grads())

    def fill_uniform_(self, rng: np.random.Generator, bound: float) -> None:
        """Every parameter from U(-bound, bound), drawn in registration order from rng: torch's
        default init of the recurrent layers, their cells and Linear."""
        for _, param in self.named_parameters():
            param[...] = rng.uniform(-bound, bound, size=param.shape)

    def zero_grad(self) -> None:
        for _, grad in self.named_grads():
            grad.fill(0.0)

    # -- state dicts ----------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """A copy of every parameter, keyed and ordered as torch's state_dict()."""
        return OrderedDict((name, value.copy()) for name, value in self.named_parameters())

    def load_state_dict(self, state_dict: Mapping[str, object]) -> None:
        """Copy arrays into the parameters. Everything is checked before anything is copied.

        Keys must match exactly; each value must have the parameter's shape and dtype (convert
        a float32 dict with ``{k: v.astype(np.float64)}`` for a float64 module: nothing is cast
        silently) and be finite. Torch tensors on the CPU are accepted through ``np.asarray``.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if missing or unexpected:
            raise ValueError(
                f"state_dict keys do not match {type(self).__name__}'s parameters: "
                f"missing {missing}, unexpected {unexpected}"
            )
        arrays = {}
        for name, param in own.items():
            value = np.asarray(state_dict[name])
            _check_parameter_value(f"state_dict[{name!r}]", value, param)
            arrays[name] = value
        for name, param in own.items():
            np.copyto(param, arrays[name])

    # -- what a forward keeps for its backward ---------------------------------------------
    def _save_for_backward(self, saved: object) -> None:
        """Keep what backward() needs; a new forward replaces what an earlier one kept."""
        self._saved = saved
        self._backward_done = False

    def _saved_for_backward(self):
        """What the last forward kept, or CallOrderError. Nothing changes here: backward
        calls _release_saved once its arguments have passed their checks."""
        if self._saved is None:
            name = type(self).__name__
            if self._backward_done:
                raise CallOrderError(
                    f"{name}.backward() was already called for the last forward(); call "
                    "forward() again before another backward()"
                )
            raise CallOrderError(
                f"{name}.backward() called before forward(): nothing to go back through"
            )
        return self._saved

    def _release_saved(self) -> None:
        self._saved = None
        self._backward_done = True

    # -- dtype ----------------------------------------------------------------------------
    def double(self) -> Module:
        """Make every parameter and gradient float64, in this module and its children, and
        return the module (torch's ``.double()``)."""
        return self._to_dtype(np.dtype(np.float64))

    def float(self) -> Module:
        """Make every parameter and gradient float32 (torch's ``.float()``); returns self."""
        return self._to_dtype(np.dtype(np.float32))

    def _to_dtype(self, dtype: np.dtype) -> Module:
        """NumPy cannot change an array's dtype in place: a converted parameter is a new array
        (take it again from named_parameters(), and build optimizers after converting, as torch
        advises for .cuda()). What the last forward kept for backward is dropped when the
        dtype changes: call forward again."""
        for child in self._modules.values():
            child._to_dtype(dtype)
        for name in self._parameters:
            self._parameters[name] = self._parameters[name].astype(dtype, copy=False)
            self._grads[name] = self._grads[name].astype(dtype, copy=False)
        if getattr(self, "dtype", dtype) != dtype:
            self.dtype = dtype
            self._saved = None
            self._backward_done = False
        return self

    # -- modes ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        self.training = bool(mode)
        for child in self._modules.values():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)
