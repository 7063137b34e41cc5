"""Gradient clipping, in place on a module's gradients, as torch.nn.utils does it.

clip_grad_norm_ rescales all gradients together when their joint norm is too large:

    total_norm = || (||g_1||_p, ||g_2||_p, ...) ||_p      the p-norm of all entries as one vector
    clip_coef  = min(max_norm / (total_norm + 1e-6), 1)
    g_k        = g_k * clip_coef                          for every gradient

The 1e-6 keeps the division finite, so the clipped norm lands just below max_norm; the
coefficient is clamped to 1, so small gradients are never scaled up.

clip_grad_value_ clamps every entry to [-clip_value, clip_value] instead, which changes the
gradient's direction.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _grads_of(module) -> list[np.ndarray]:
    if not hasattr(module, "named_grads"):
        raise TypeError(f"module must be a scratch.Module (with named_grads()), got "
                        f"{type(module).__name__}")
    return [grad for _, grad in module.named_grads()]


def _vector_norm(x: np.ndarray, p: float) -> float:
    """||x||_p of all entries of x: max |x| for p = inf, the number of non-zeros for p = 0."""
    a = np.abs(x.ravel())
    if a.size == 0:
        return 0.0
    if p == math.inf:
        return float(a.max())
    if p == -math.inf:
        return float(a.min())
    if p == 0:
        return float(np.count_nonzero(a))
    if p == 1:
        return float(a.sum())
    if p == 2:
        return float(np.sqrt(np.dot(a, a)))
    return float((a**p).sum() ** (1.0 / p))


def clip_grad_norm_(module, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale the module's gradients in place so that their joint p-norm is at most about
    max_norm. Returns the total norm *before* clipping (as torch does)."""
    for name, value in (("max_norm", max_norm), ("norm_type", norm_type)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    grads = _grads_of(module)
    p = float(norm_type)
    if not grads:
        return 0.0
    norms = np.array([_vector_norm(g, p) for g in grads])  # one norm per gradient
    total_norm = _vector_norm(norms, p)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {p} for gradients is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm "
            "anyway, set error_if_nonfinite=False"
        )
    clip_coef = float(max_norm) / (total_norm + 1e-6)
    # min() would drop a NaN coefficient; torch's clamp keeps it (and so do we)
    clip_coef_clamped = clip_coef if math.isnan(clip_coef) else min(clip_coef, 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 = NaN for an infinite entry, as in torch
        for g in grads:
            g *= clip_coef_clamped
    return total_norm


def clip_grad_value_(module, clip_value: float) -> None:
    """Clamp every gradient entry of the module to [-clip_value, clip_value], in place."""
    if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real):
        raise TypeError(f"clip_value must be a number, got {type(clip_value).__name__}")
    for g in _grads_of(module):
        np.clip(g, -clip_value, clip_value, out=g)
