"""Optimizers that update a module's parameters in place, update for update as torch.optim.

scratch has no autograd tensors, so an optimizer takes the module itself: it reads the
parameters from ``module.named_parameters()`` and their gradients from ``module.grads`` (keyed
alike), and writes the new values into the same arrays. ``step()`` applies one update,
``zero_grad()`` clears the gradients (``backward`` adds into them, as torch adds into
``.grad``). The state (momentum buffers, moment estimates) is kept per parameter name.

The formulas are torch's single-tensor CPU implementations, operation for operation, with g the
gradient, p the parameter and lr the learning rate (t counts the steps from 1):

SGD
    g = g + weight_decay * p                        (L2 penalty, when weight_decay != 0)
    b = g                        at the first step  (momentum buffer, when momentum != 0)
    b = momentum * b + (1 - dampening) * g          afterwards
    g = g + momentum * b         with nesterov, else g = b
    p = p - lr * g

Adam (and AdamW, which decays the weights instead of adding weight_decay * p to g)
    p = p * (1 - lr * weight_decay)                 AdamW only
    g = g + weight_decay * p                        Adam only, when weight_decay != 0
    m = beta1 * m + (1 - beta1) * g                 m, v start at zero
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v)                           amsgrad only; then v_max replaces v below
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

Note where eps goes: it is added after the bias correction of sqrt(v), not inside the sqrt.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from scratch._checks import check_bool


def _check_hyper(name: str, value, *, low: float = 0.0, high: float | None = None,
                 high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or value < low or too_high:
        upper = "" if high is None else (f" and < {high}" if high_open else f" and <= {high}")
        raise ValueError(f"Invalid {name}: {value} (expected >= {low}{upper})")
    return value


class Optimizer:
    """Base class: pairs each parameter with its gradient by name and keeps per-name state."""

    def __init__(self, module) -> None:
        if not hasattr(module, "named_parameters") or not hasattr(module, "grads"):
            raise TypeError(
                f"module must have named_parameters() and grads (a scratch.Module), got "
                f"{type(module).__name__}"
            )
        params = dict(module.named_parameters())
        grads = module.grads
        if not params:
            raise ValueError("optimizer got a module without parameters")
        if set(params) != set(grads):
            raise ValueError(f"module's parameters {sorted(params)} and gradients "
                             f"{sorted(grads)} are not keyed alike")
        for name, param in params.items():
            if grads[name].shape != param.shape:
                raise ValueError(f"grads[{name!r}] has shape {grads[name].shape}, but the "
                                 f"parameter has shape {param.shape}")
        self.module = module
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name in params}

    def step(self) -> None:
        """Apply one update to every parameter, in place."""
        grads = self.module.grads
        for name, param in self.module.named_parameters():
            self._update(param, grads[name], self.state[name])

    def zero_grad(self) -> None:
        self.module.zero_grad()

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
    weight decay (an L2 penalty added to the gradient): torch.optim.SGD."""

    def __init__(self, module, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        self.lr = _check_hyper("lr", lr)
        self.momentum = _check_hyper("momentum", momentum)
        self.dampening = _check_hyper("dampening", dampening, low=-math.inf)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)
        check_bool("nesterov", nesterov)
        if nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening, got "
                             f"momentum={momentum}, dampening={dampening}")
        self.nesterov = bool(nesterov)
        super().__init__(module)

    def _update(self, p, g, state) -> None:
        if self.weight_decay != 0:
            g = g + self.weight_decay * p  # L2 penalty's gradient
        if self.momentum != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()  # b = g at the first step
            else:
                b = state["momentum_buffer"]
                b *= self.momentum
                b += (1 - self.dampening) * g  # b = momentum * b + (1 - dampening) * g
            b = state["momentum_buffer"]
            g = g + self.momentum * b if self.nesterov else b
        p -= self.lr * g  # in place: the module's own array


class Adam(Optimizer):
    """Adam (Kingma and Ba) with torch's bias correction and eps placement; amsgrad keeps the
    running maximum of v. weight_decay adds weight_decay * p to the gradient (L2 penalty)."""

    decoupled_weight_decay = False

    def __init__(self, module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        self.lr = _check_hyper("lr", lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _check_hyper("betas[0]", betas[0], high=1.0, high_open=True)
        self.beta2 = _check_hyper("betas[1]", betas[1], high=1.0, high_open=True)
        self.eps = _check_hyper("eps", eps)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)
        check_bool("amsgrad", amsgrad)
        self.amsgrad = bool(amsgrad)
        super().__init__(module)

    def _update(self, p, g, state) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)  # m
            state["exp_avg_sq"] = np.zeros_like(p)  # v
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]

        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                p *= 1 - self.lr * self.weight_decay  # AdamW: shrink the weights directly
            else:
                g = g + self.weight_decay * p  # Adam: L2 penalty's gradient
        # m = beta1 * m + (1 - beta1) * g, written as torch's lerp_
        # computes it when beta1 > 0.5
        m += (1 - self.beta1) * (g - m)
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)  # v = beta2 * v + (1 - beta2) * g**2

        bias_correction1 = 1 - self.beta1**t
        bias_correction2 = 1 - self.beta2**t
        step_size = self.lr / bias_correction1
        if self.amsgrad:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = np.sqrt(v) / bias_correction2**0.5 + self.eps  # eps after the correction
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p <- p (1 - lr weight_decay)
    before the Adam step, instead of an L2 term in the gradient. torch's default
    weight_decay=1e-2."""

    decoupled_weight_decay = True

    def __init__(self, module, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(module, lr, betas, eps, weight_decay, amsgrad)
