"""The implementation under test: loading it, and running a case through it.

An implementation is any module with scratch's API (``RNN``, ``LSTM``, ``GRU``, with
``forward``, ``backward``, ``grads``, ``zero_grad``, ``load_state_dict``, ``train``). It is
named on the command line by ``--impl``:

* an importable module name (``scratch``, the default, or a student's package on sys.path);
* a directory: either one that holds a ``scratch/`` package (a student's project, or a zoo
  member) or a package directory itself. Its absolute imports say ``scratch.``, as the
  original's do. (The bare name ``scratch`` always means the importable module; give a
  student's ``scratch/`` as ``./scratch`` or by the directory above it.)

A copy loaded from a directory must not be confused with the project's own ``scratch``: the
copy is imported while a finder that maps ``scratch`` and ``scratch.*`` to the copy's files
stands first on ``sys.meta_path`` and the project's ``scratch`` modules are out of
``sys.modules``; afterwards those are put back and the copy's modules live on under a unique
name (``_parity_impl_<n>.scratch...``). Every module of the copy is imported up front, so
that nothing of it is looked up later by name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import pkgutil
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np

from parity.calls import layer_arguments, layer_inputs
from parity.case import Case, CaseData
from parity.reference import Outcome
from parity.spec import MODES

PACKAGE = "scratch"
REQUIRED = ("RNN", "LSTM", "GRU")
_counter = itertools.count()


class ImplError(ValueError):
    """--impl names nothing loadable, or something without scratch's API."""


class _CopyFinder(importlib.abc.MetaPathFinder):
    """Finds ``scratch`` and ``scratch.*`` in one directory, ahead of every other finder."""

    def __init__(self, package_dir: Path) -> None:
        self.package_dir = package_dir

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        if parts[0] != PACKAGE:
            return None
        if len(parts) == 1:
            # the package itself, whatever its directory is called
            return importlib.util.spec_from_file_location(
                PACKAGE, self.package_dir / "__init__.py",
                submodule_search_locations=[str(self.package_dir)],
            )
        search = self.package_dir.joinpath(*parts[1:-1])
        return importlib.machinery.PathFinder.find_spec(fullname, [str(search)])


def _package_dir(path: Path) -> Path:
    if (path / PACKAGE / "__init__.py").is_file():
        return path / PACKAGE
    if (path / "__init__.py").is_file():
        return path
    raise ImplError(
        f"--impl {path}: the directory holds neither a {PACKAGE}/ package "
        f"({path / PACKAGE / '__init__.py'} is missing) nor an __init__.py of its own"
    )


def _import_copy(package_dir: Path) -> ModuleType:
    """Import the package in package_dir as ``scratch`` without touching the real one."""
    own = {k: v for k, v in sys.modules.items() if k == PACKAGE or k.startswith(PACKAGE + ".")}
    for name in own:
        del sys.modules[name]
    finder = _CopyFinder(package_dir.resolve())
    sys.meta_path.insert(0, finder)
    loaded: dict[str, ModuleType] = {}
    try:
        module = importlib.import_module(PACKAGE)
        for info in pkgutil.walk_packages(module.__path__, PACKAGE + "."):
            importlib.import_module(info.name)
        loaded = {k: v for k, v in sys.modules.items()
                  if k == PACKAGE or k.startswith(PACKAGE + ".")}
    finally:
        sys.meta_path.remove(finder)
        for name in [k for k in sys.modules if k == PACKAGE or k.startswith(PACKAGE + ".")]:
            loaded.setdefault(name, sys.modules[name])
            del sys.modules[name]
        sys.modules.update(own)
    unique = f"_parity_impl_{next(_counter)}"
    for name, mod in loaded.items():
        sys.modules[f"{unique}.{name}"] = mod
    for name, mod in loaded.items():
        origin = Path(getattr(mod, "__file__", "") or "").resolve()
        if package_dir.resolve() not in origin.parents:
            raise ImplError(f"{name} was loaded from {origin}, not from {package_dir}")
    return module


def load_impl(spec: str | None = None) -> ModuleType:
    """The implementation named by ``spec`` (see the module docstring); scratch when None."""
    spec = spec or PACKAGE
    path = Path(spec)
    if spec != PACKAGE and path.is_dir():  # "scratch" is the module, even beside ./scratch/
        package_dir = _package_dir(path)
        try:
            module = _import_copy(package_dir)
        except ImplError:
            raise
        except Exception as error:  # a student's copy that does not import is a finding
            raise ImplError(f"--impl {spec}: importing {package_dir} raised "
                            f"{type(error).__name__}: {error}") from error
    elif path.suffix == ".py" or "/" in spec or "\\" in spec:
        raise ImplError(f"--impl {spec}: no such directory")
    else:
        try:
            module = importlib.import_module(spec)
        except ImportError as error:
            raise ImplError(f"--impl {spec}: cannot import it ({error}); give a module name "
                            f"or a directory holding a {PACKAGE}/ package") from None
    absent = [name for name in REQUIRED if not hasattr(module, name)]
    if absent:
        raise ImplError(f"--impl {spec}: the module has no {absent} (it needs {REQUIRED})")
    return module


# -- running a case --------------------------------------------------------------------------
class ImplOutcome(NamedTuple):
    first: Outcome  # after one backward from zeroed gradients
    grads_twice: dict[str, np.ndarray]  # after a second forward and backward, not zeroed


def build_impl(case: Case, data: CaseData, impl: ModuleType):
    """The implementation's module for the case, weights loaded, in the case's mode."""
    args, kwargs = layer_arguments(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        module = getattr(impl, MODES[case.mode].cls)(*args, dtype=case.np_dtype, **kwargs)
    module.load_state_dict({k: v.copy() for k, v in data.params.items()})
    module.train(case.training)
    return module


def copied(value):
    """Fresh copies of the arrays in ``value`` (in tuples, lists and dicts alike; anything
    else as it is): what an implementation does to its arguments never reaches the next call."""
    if isinstance(value, (tuple, list)):
        return type(value)(copied(v) for v in value)
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    return value.copy() if isinstance(value, np.ndarray) else value


def run_twice(module, inputs: tuple, upstream: tuple, stage: list[str],
              kwargs: dict | None = None) -> list[tuple]:
    """``module(*inputs, **kwargs)`` and ``module.backward(*upstream)`` twice without
    zero_grad() between (from zeroed gradients, each call on fresh copies of its arguments):
    for each run, (what forward() returned, what backward() returned, a copy of the
    gradients). ``stage`` is appended with what is being done, so that a crash can be told
    apart."""
    stage.append("zero_grad()")
    module.zero_grad()
    runs = []
    for words in ("", "a second forward() and backward() without zero_grad(): "):
        stage.append(words + "forward()")
        got = module(*copied(inputs), **copied(kwargs or {}))
        stage.append(words + "backward()")
        back = module.backward(*copied(upstream))
        runs.append((got, back, {k: np.array(v, copy=True) for k, v in module.grads.items()}))
    return runs


def run_impl(case: Case, data: CaseData, module, stage: list[str]) -> ImplOutcome:
    """Forward and backward through the implementation, twice without zero_grad between.

    ``stage`` is appended with what is being done, so that a crash can be told apart.
    """
    hx, grad_state, kwargs = layer_inputs(case, data)
    runs = run_twice(module, (data.input, hx), (data.grad_output, grad_state), stage, kwargs)
    stage.append("reading forward()'s (output, h_n) and backward()'s (grad_input, grad_hx)")
    ((output, state), (grad_input, grad_hx), grads), grads_twice = runs[0], runs[1][-1]
    lstm = case.mode == "LSTM"
    h_n, c_n = state if lstm else (state, None)
    grad_h0, grad_c0 = grad_hx if lstm and grad_hx is not None else (grad_hx, None)
    return ImplOutcome(Outcome(output, h_n, c_n, grad_input, grad_h0, grad_c0, grads),
                       grads_twice)
