"""Argument checks for the public boundary. Each error names the argument, what it got and
what was expected, and is raised before any work is done."""

from __future__ import annotations

import numbers

import numpy as np


def check_positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "greater than zero"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_array(name: str, value, dtype: np.dtype) -> np.ndarray:
    """value must be a NumPy array of exactly this dtype (nothing is cast silently)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {value.dtype}, but the module's parameters are {dtype}: "
            f"convert it with {name}.astype(np.{dtype}) or build the module with "
            f"dtype=np.{value.dtype}"
        )
    return value


def check_shape(name: str, value: np.ndarray, expected: tuple) -> None:
    if value.shape != tuple(expected):
        raise ValueError(f"{name} has shape {value.shape}, expected {tuple(expected)}")
