"""What a submission returned against what the reference returned, in words a student reads.

``first_divergence`` walks the reference's result (arrays, named tuples, tuples, dicts, None,
numbers) in order and stops at the first thing that differs: a missing or extra value, a
shape, a dtype, a NaN, or numbers off by more than the project's float64 criterion

    |submission - reference| <= FLOAT64_TOL * max(1, max |reference|)

element by element, with the tolerance from ``parity.tolerances``, the one place for it.
``measure`` is the project's one error computation (the parity harness's comparator words
the same numbers), ``numerical_gradient`` its one finite-difference routine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parity import tolerances

TOL = tolerances.FLOAT64_TOL


class _Anything:
    """Stands in the reference's value for a part that is not compared."""

    def __repr__(self) -> str:
        return "ANYTHING"


ANYTHING = _Anything()


@dataclass(frozen=True)
class Divergence:
    """The first value that differs: its name (``h``, ``cache.step.h_prev``,
    ``grads['weight_hh_l0']``) and what is wrong with it."""

    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


def first_divergence(expected, actual, name: str = "result",
                     tol: float = TOL) -> Divergence | None:
    """The first difference between the reference's value and the submission's, or None;
    numbers are held to ``tol`` (the float64 criterion unless said otherwise)."""
    if expected is ANYTHING:
        return None
    if expected is None:
        if actual is None:
            return None
        return Divergence(name, f"expected None, got {_what(actual)}")
    if isinstance(expected, np.ndarray):
        return _compare_array(expected, actual, name, tol)
    if isinstance(expected, (bool, np.bool_, str)):  # a str of its own type; bool or np.bool_
        kinds = (type(expected),) if isinstance(expected, str) else (bool, np.bool_)
        if type(actual) in kinds and actual == expected:
            return None
        return Divergence(name, f"expected {expected!r}, got {_what(actual)}")
    if isinstance(expected, (int, float, np.number)):
        if isinstance(actual, (int, float, np.number)) and not isinstance(actual, bool):
            actual = np.asarray(actual, dtype=float)
        return _compare_array(np.asarray(expected, dtype=float), actual, name, tol)
    if isinstance(expected, tuple) and hasattr(type(expected), "_fields"):
        fields = type(expected)._fields
        if not isinstance(actual, tuple) or len(actual) != len(fields):
            return Divergence(name, f"expected a {type(expected).__name__} with fields "
                                    f"{', '.join(fields)}, got {_what(actual)}")
        actual_fields = getattr(type(actual), "_fields", ())  # a plain tuple: by position
        parts = [(e, getattr(actual, f) if f in actual_fields else a, f"{name}.{f}")
                 for f, e, a in zip(fields, expected, actual)]
    elif isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return Divergence(name, f"expected {len(expected)} values, got {_what(actual)}")
        parts = [(e, a, f"{name}[{i}]") for i, (e, a) in enumerate(zip(expected, actual))]
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            return Divergence(name, f"expected a dict, got {_what(actual)}")
        missing = [k for k in expected if k not in actual]
        if missing:
            return Divergence(name, f"has no entry {missing[0]!r}")
        parts = [(e, actual[k], f"{name}[{k!r}]") for k, e in expected.items()]
    else:
        raise TypeError(f"cannot compare a reference value of type {type(expected).__name__}")
    for e, a, part in parts:  # in order, the first that differs
        found = first_divergence(e, a, part, tol)
        if found:
            return found
    return None


def array_problem(expected: np.ndarray, actual, reference: str = "the reference") -> str | None:
    """What makes ``actual`` no match for the reference's array before any number is weighed,
    or None: not an array, another shape or float dtype, another mask, a NaN or an infinity
    where a number is expected, or anything else where the reference has a NaN or an infinity
    (those must be met exactly; ``reference`` names the reference in these words). The parity
    harness's comparator is this one."""
    if not isinstance(actual, np.ndarray):
        return f"expected an array of shape {expected.shape}, got {_what(actual)}"
    if actual.shape != expected.shape:
        return f"has shape {actual.shape}, expected {expected.shape}"
    if expected.dtype.kind == "f" and actual.dtype != expected.dtype:
        return (f"has dtype {actual.dtype}, expected {expected.dtype} (keep the inputs' dtype: "
                "nothing may be cast)")
    if expected.dtype.kind == "b":
        if actual.dtype.kind != "b" or not np.array_equal(actual, expected):
            return "the mask differs from the expected one"
        return None
    if actual.dtype.kind not in "biuf":
        return f"has dtype {actual.dtype}, expected {expected.dtype}"
    exp, act = expected.astype(np.float64), actual.astype(np.float64)
    bad_nan = ~np.isfinite(act) & np.isfinite(exp)
    if bad_nan.any():
        index = tuple(int(i) for i in np.argwhere(bad_nan)[0])
        return f"holds {act[index]} at index {list(index)} where {exp[index]:.6g} was expected"
    unmatched = ~np.isfinite(exp) & ~((np.isnan(exp) & np.isnan(act)) | (exp == act))
    if unmatched.any():
        index = tuple(int(i) for i in np.argwhere(unmatched)[0])
        return (f"at index {list(index)} the implementation has {actual[index]}, "
                f"{reference} {expected[index]}")
    return None


@dataclass(frozen=True)
class Error:
    """How far an array is from the reference's, by the project's one measure: ``abs`` =
    |actual - expected| element by element (0 where the reference is not finite), its largest
    value at ``index`` (the first of those that tie to 1e-9, so that references differing in
    the last place name the same element), and ``scale`` = max(1, max |reference|)."""

    expected: np.ndarray  # float64
    actual: np.ndarray  # float64
    abs: np.ndarray
    scale: float
    index: tuple[int, ...]

    @property
    def largest(self) -> float:
        return float(self.abs[self.index])

    @property
    def error(self) -> float:
        """max |actual - expected| / max(1, max |reference|): what is held against tol."""
        return self.largest / self.scale


def measure(expected: np.ndarray, actual: np.ndarray) -> Error:
    """The error of a non-empty numeric array that ``array_problem`` passed (so it meets
    the reference's NaNs and infinities exactly: those elements count as no error)."""
    exp, act = expected.astype(np.float64), actual.astype(np.float64)
    finite = np.isfinite(exp)
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs(act - exp), 0.0)
    first = int(np.argmax(err >= err.max() * (1.0 - 1e-9)))
    index = tuple(int(i) for i in np.unravel_index(first, err.shape))
    return Error(exp, act, err, tolerances.scale(exp[finite]), index)


def _compare_array(expected: np.ndarray, actual, name: str,
                   tol: float) -> Divergence | None:
    problem = array_problem(expected, actual)
    if problem is not None:
        return Divergence(name, problem)
    if expected.dtype.kind == "b" or expected.size == 0:
        return None
    error = measure(expected, actual)
    allowed = tol * error.scale
    off = error.abs > allowed
    if not off.any():
        return None
    index = error.index
    where = f" at index {list(index)}" if expected.ndim else ""
    count = f"; {int(off.sum())} of {off.size} elements are off" if off.size > 1 else ""
    return Divergence(
        name,
        f"differs{where}: expected {error.expected[index] + 0.0:.6g}, got "
        f"{error.actual[index] + 0.0:.6g} (off by {error.largest:.2e}; allowed {allowed:.1e})"
        f"{count}",
    )


def _what(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return f"a {type(value).__name__}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} values"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)[:6]}"
    return f"{type(value).__name__} {value!r}"[:80]


def numerical_gradient(loss, array: np.ndarray, eps: float = tolerances.FD_EPS) -> np.ndarray:
    """d loss() / d array by central differences: each element of ``array`` is perturbed in
    place by +-eps (and restored)."""
    grad = np.zeros(array.shape, dtype=np.float64)
    for index in np.ndindex(array.shape):
        kept = array[index]
        array[index] = kept + eps
        up = loss()
        array[index] = kept - eps
        down = loss()
        array[index] = kept
        grad[index] = (up - down) / (2.0 * eps)
    return grad
