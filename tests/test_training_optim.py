"""scratch.optim against torch.optim, update by update, and the optimizers' refusals.

The gradients are drawn at random and set on both sides before each step, so these tests see
the optimizer alone; whole training runs are in test_training_runs.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import F64_REL, assert_close
from hypothesis import given
from hypothesis import strategies as st

import scratch
import torch_impl
from parity.tolerances import tolerance

SCRATCH = {"SGD": scratch.SGD, "Adam": scratch.Adam, "AdamW": scratch.AdamW}
TORCH = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}


def sgd_options():
    return st.fixed_dictionaries({
        "lr": st.sampled_from([0.5, 0.1, 1e-3]),
        "momentum": st.sampled_from([0.0, 0.5, 0.9]),
        "dampening": st.sampled_from([0.0, 0.3]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "nesterov": st.booleans(),
    }).filter(lambda o: not o["nesterov"] or (o["momentum"] > 0 and o["dampening"] == 0))


def adam_options():
    return st.fixed_dictionaries({
        "lr": st.sampled_from([0.1, 1e-3]),
        "betas": st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.3, 0.7)]),
        "eps": st.sampled_from([1e-8, 1e-3]),
        "weight_decay": st.sampled_from([0.0, 0.05]),
        "amsgrad": st.booleans(),
    })


def run_both(name, options, dtype, grads_scale, steps, seed):
    """The same random gradients into both sides' optimizers for ``steps`` updates; returns
    the parameters of both sides after each update."""
    rng = np.random.default_rng(seed)
    module = scratch.SimpleRNN(3, 4, 2, kind="gru", dtype=dtype, seed=seed)
    twin = torch_impl.to_torch(module)
    ours = SCRATCH[name](module, **options)
    theirs = TORCH[name](twin.parameters(), **options)
    history = []
    for _ in range(steps):
        ours.zero_grad()
        theirs.zero_grad()
        for (key, grad), (tkey, param) in zip(module.named_grads(), twin.named_parameters()):
            assert key == tkey
            g = (grads_scale * rng.standard_normal(grad.shape)).astype(dtype)
            grad += g
            param.grad = torch.as_tensor(g.copy())
        ours.step()
        theirs.step()
        history.append((module.state_dict(),
                        {k: v.detach().numpy().copy() for k, v in twin.named_parameters()}))
    return history


@given(data=st.data())
def test_sgd_matches_torch_update_by_update(data):
    options = data.draw(sgd_options(), label="options")
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    steps = 6
    history = run_both("SGD", options, dtype, 1.0, steps, data.draw(st.integers(0, 99)))
    rel = F64_REL if dtype == np.float64 else tolerance(dtype, steps, 1)
    for k, (ours, theirs) in enumerate(history):
        for key in theirs:
            assert_close(ours[key], theirs[key], f"{key} after update {k + 1}", rel)


@given(data=st.data())
def test_adam_and_adamw_match_torch_update_by_update(data):
    name = data.draw(st.sampled_from(["Adam", "AdamW"]), label="optimizer")
    options = data.draw(adam_options(), label="options")
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    # tiny gradients put eps to the test: it must sit outside the square root
    scale = data.draw(st.sampled_from([1.0, 1e-6, 1e-9]), label="gradient scale")
    steps = 6
    history = run_both(name, options, dtype, scale, steps, data.draw(st.integers(0, 99)))
    rel = F64_REL if dtype == np.float64 else tolerance(dtype, steps, 1)
    for k, (ours, theirs) in enumerate(history):
        for key in theirs:
            assert_close(ours[key], theirs[key], f"{key} after update {k + 1}", rel)


def test_first_momentum_step_uses_the_gradient_itself():
    """torch starts the momentum buffer at g, not at (1 - dampening) * g or at 0."""
    layer = scratch.Linear(2, 2, seed=0)
    p0 = layer.state_dict()
    rng = np.random.default_rng(0)
    grads = {k: rng.standard_normal(v.shape) for k, v in p0.items()}
    for k, g in layer.grads.items():
        g += grads[k]
    scratch.SGD(layer, lr=0.1, momentum=0.9, dampening=0.5).step()
    for k, p in layer.named_parameters():
        assert_close(p, p0[k] - 0.1 * grads[k], k)


def test_adam_first_step_is_lr_times_the_sign():
    """Bias correction makes the first step m / sqrt(v) = g / |g|: a step of lr per weight."""
    layer = scratch.Linear(3, 2, seed=1)
    p0 = layer.state_dict()
    for g in layer.grads.values():
        g += np.random.default_rng(1).standard_normal(g.shape)
    signs = {k: np.sign(g) for k, g in layer.grads.items()}
    scratch.Adam(layer, lr=0.01, eps=1e-12).step()
    for k, p in layer.named_parameters():
        assert_close(p, p0[k] - 0.01 * signs[k], k)


def test_adamw_decay_is_decoupled_from_the_gradient():
    """With zero gradients Adam's L2 term moves the weights by lr * sign(p) (normalized),
    AdamW's decay by lr * weight_decay * p."""
    adam_layer, adamw_layer = scratch.Linear(3, 2, seed=2), scratch.Linear(3, 2, seed=2)
    p0 = adam_layer.state_dict()
    scratch.Adam(adam_layer, lr=0.01, weight_decay=0.5, eps=1e-12).step()
    scratch.AdamW(adamw_layer, lr=0.01, weight_decay=0.5).step()
    for k, p in adamw_layer.named_parameters():
        assert_close(p, p0[k] * (1 - 0.01 * 0.5), f"AdamW {k}")
    for k, p in adam_layer.named_parameters():
        assert_close(p, p0[k] - 0.01 * np.sign(p0[k]), f"Adam {k}")


def test_step_updates_the_modules_own_arrays():
    model = scratch.SimpleRNN(2, 3, 1, kind="lstm", seed=0)
    arrays = {k: id(v) for k, v in model.named_parameters()}
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    before, _ = model(x)
    for g in model.grads.values():
        g += 1.0
    scratch.SGD(model, lr=0.1).step()
    after, _ = model(x)
    assert {k: id(v) for k, v in model.named_parameters()} == arrays
    assert not np.allclose(before, after)


def test_zero_grad_clears_the_modules_gradients():
    layer = scratch.Linear(2, 2)
    opt = scratch.Adam(layer)
    for g in layer.grads.values():
        g += 3.0
    opt.zero_grad()
    assert all(not np.any(g) for g in layer.grads.values())


@pytest.mark.parametrize("make, message", [
    (lambda m: scratch.SGD(m, lr=-1.0), "Invalid lr: -1.0"),
    (lambda m: scratch.SGD(m, lr=0.1, momentum=-0.1), "Invalid momentum"),
    (lambda m: scratch.SGD(m, lr=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda m: scratch.SGD(m, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "zero dampening"),
    (lambda m: scratch.Adam(m, betas=(1.0, 0.999)), r"Invalid betas\[0\]: 1.0"),
    (lambda m: scratch.Adam(m, betas=(0.9, -0.1)), r"Invalid betas\[1\]"),
    (lambda m: scratch.Adam(m, eps=-1e-8), "Invalid eps"),
    (lambda m: scratch.AdamW(m, weight_decay=-0.1), "Invalid weight_decay"),
    (lambda m: scratch.Adam(m, lr=float("nan")), "Invalid lr: nan"),
])
def test_optimizers_refuse_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make(scratch.Linear(2, 2))


def test_optimizer_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match=r"named_parameters\(\) and grads"):
        scratch.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="betas must be a pair"):
        scratch.Adam(scratch.Linear(2, 2), betas=0.9)
