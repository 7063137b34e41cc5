"""Loss functions with torch.nn's semantics and an explicit backward.

``loss = criterion(input, target)`` computes the loss and keeps what its gradient needs;
``criterion.backward()`` returns dL/d input. ``criterion.loss_and_grad(input, target)`` does
both, which is the shape a training step wants.

Mean squared error (MSELoss), over the M elements of input and target:

    none: l = (x - t)**2                      dl/dx = 2 (x - t) * dl
    sum:  L = sum l                           dL/dx = 2 (x - t)
    mean: L = sum l / M                       dL/dx = 2 (x - t) / M

Cross-entropy (CrossEntropyLoss), logits z (N, C), integer targets y (N,):

    log p[n]  = z[n] - logsumexp(z[n])                      (log-softmax over the C classes)
    l[n]      = -log p[n, y[n]],  0 where y[n] == ignore_index
    mean:  L  = sum l / (number of targets not ignored)     (NaN when every target is ignored)
    dL/dz[n]  = (softmax(z[n]) - onehot(y[n])) / count      (zero rows where ignored; all zero,
                                                             as in torch, when all are)
"""

from __future__ import annotations

import numbers

import numpy as np

from scratch._checks import check_array, check_shape
from scratch.module import Module

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _check_float_array(name: str, value) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype not in (np.float32, np.float64):
        kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{name} must be a float32 or float64 numpy.ndarray, got {kind}")
    return value


class _Loss(Module):
    """What the losses share: a reduction, a cache, and backward's call-order checks."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self._loss_shape: tuple = ()

    def _upstream(self, grad_loss, dtype) -> np.ndarray:
        """dL/d loss as an array shaped like the loss (1 when omitted for a scalar loss)."""
        if grad_loss is None:
            if self.reduction == "none":
                raise ValueError("backward() of a loss with reduction='none' needs grad_loss, "
                                 f"the gradient of each element, of shape {self._loss_shape}")
            return np.ones((), dtype=dtype)
        if isinstance(grad_loss, numbers.Real) and self.reduction != "none":
            return np.asarray(grad_loss, dtype=dtype)
        grad = check_array("grad_loss", grad_loss, dtype)
        check_shape("grad_loss", grad, self._loss_shape)
        return grad

    def forward(self, input: np.ndarray, target):
        raise NotImplementedError

    def backward(self, grad_loss=None) -> np.ndarray:
        raise NotImplementedError

    def loss_and_grad(self, input: np.ndarray, target: np.ndarray):
        """(loss, dL/d input) in one call; the loss must be a scalar (reduction mean or sum)."""
        if self.reduction == "none":
            raise ValueError("loss_and_grad needs a scalar loss: use reduction 'mean' or 'sum'")
        loss = self.forward(input, target)
        return loss, self.backward()


class MSELoss(_Loss):
    """Mean squared error between input and target, which must have the same shape and dtype
    (torch broadcasts mismatched shapes with a warning; this refuses them)."""

    def forward(self, input: np.ndarray, target: np.ndarray):
        x = _check_float_array("input", input)
        t = check_array("target", target, x.dtype)
        check_shape("target", t, x.shape)
        diff = x - t  # (...)
        squared = diff * diff  # (...)
        self._save_for_backward((diff,))
        self._loss_shape = x.shape if self.reduction == "none" else ()
        if self.reduction == "none":
            return squared
        total = squared.sum(dtype=x.dtype)
        return total / x.size if self.reduction == "mean" else total

    def backward(self, grad_loss=None) -> np.ndarray:
        """dL/d input, shaped like input. grad_loss: dL/d loss, shaped like the loss."""
        (diff,) = self._saved_for_backward()
        upstream = self._upstream(grad_loss, diff.dtype)
        self._release_saved()
        scale = 2.0 / diff.size if self.reduction == "mean" else 2.0
        return (scale * diff) * upstream  # (...)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits (N, C) (or (C,) for one example) against class indices (N,) (or
    a scalar), with torch's ignore_index: an ignored target adds nothing to the loss, nothing
    to the count the mean divides by, and gets a zero gradient."""

    def __init__(self, reduction: str = "mean", ignore_index: int = -100) -> None:
        super().__init__(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
        self.ignore_index: int = int(ignore_index)

    def forward(self, input: np.ndarray, target):
        z = _check_float_array("input", input)
        if z.ndim not in (1, 2) or z.shape[-1] == 0:
            raise ValueError(f"CrossEntropyLoss: input must be logits of shape (N, C) or (C,) "
                             f"with C >= 1, got shape {z.shape}")
        y = self._check_target(target, z.shape)
        single = z.ndim == 1
        z2, y2 = (z[None, :], y.reshape(1)) if single else (z, y)
        N, C = z2.shape

        shifted = z2 - z2.max(axis=1, keepdims=True)  # (N, C), for exp without overflow
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1)
        log_p = shifted - log_sum  # (N, C) log-softmax
        kept = y2 != self.ignore_index  # (N,) targets that count
        y_safe = np.where(kept, y2, 0)  # any class for the ignored rows; masked below
        picked = log_p[np.arange(N), y_safe]  # (N,) log p of the target class
        losses = np.where(kept, -picked, 0.0).astype(z.dtype)  # (N,)
        count = int(kept.sum())

        self._save_for_backward((log_p, y_safe, kept, count, single))
        self._loss_shape = (() if single else (N,)) if self.reduction == "none" else ()
        if self.reduction == "none":
            return losses[0] if single else losses
        total = losses.sum(dtype=z.dtype)
        if self.reduction == "sum":
            return total
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 = NaN, as torch
            return total / z.dtype.type(count)

    def backward(self, grad_loss=None) -> np.ndarray:
        """dL/d logits, shaped like the logits. grad_loss: dL/d loss, shaped like the loss."""
        log_p, y_safe, kept, count, single = self._saved_for_backward()
        upstream = self._upstream(grad_loss, log_p.dtype)
        self._release_saved()
        N = log_p.shape[0]
        dz = np.exp(log_p)  # (N, C) softmax
        dz[np.arange(N), y_safe] -= 1.0  # softmax - onehot
        dz *= kept[:, None]  # ignored rows get nothing
        if self.reduction == "none":
            dz *= upstream.reshape(N, 1)
        else:
            if self.reduction == "mean" and count > 0:  # no target kept: zeros, as torch
                dz /= log_p.dtype.type(count)
            dz *= upstream
        return dz[0] if single else dz

    def _check_target(self, target, logits_shape) -> np.ndarray:
        y = np.asarray(target)
        if y.dtype.kind not in "iu":
            raise TypeError(
                f"CrossEntropyLoss: target must hold integer class indices, got dtype {y.dtype} "
                "(class probabilities are not supported)"
            )
        expected = logits_shape[:-1]
        if y.shape != expected:
            raise ValueError(f"CrossEntropyLoss: target has shape {y.shape}, expected "
                             f"{expected} for logits of shape {logits_shape}")
        C = logits_shape[-1]
        bad = (y != self.ignore_index) & ((y < 0) | (y >= C))
        if np.any(bad):
            raise ValueError(f"CrossEntropyLoss: target values must be in 0..{C - 1} (or "
                             f"ignore_index={self.ignore_index}), got {y[bad].ravel()[:5]}")
        return y


def flat_cross_entropy(criterion: CrossEntropyLoss, logits: np.ndarray, targets: np.ndarray):
    """Cross-entropy at every position: logits (..., C) against targets (...).

    What torch users write as ``criterion(logits.reshape(-1, C), targets.reshape(-1))``, with
    its backward. Returns (loss, dL/dlogits shaped like logits).
    """
    logits = _check_float_array("logits", logits)
    targets = np.asarray(targets)
    if logits.ndim == 0 or targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets has shape {targets.shape}, expected logits.shape[:-1] = "
                         f"{logits.shape[:-1]} (logits of shape {logits.shape})")
    C = logits.shape[-1]
    loss = criterion(logits.reshape(-1, C), targets.reshape(-1))
    return loss, criterion.backward().reshape(logits.shape)
