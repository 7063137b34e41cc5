"""clip_grad_norm_ and clip_grad_value_ against torch.nn.utils."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import F64_REL, assert_close
from hypothesis import given
from hypothesis import strategies as st

import scratch
import torch_impl


def model_with_grads(rng, scale):
    model = scratch.SimpleRNN(3, 4, 2, kind="lstm", seed=0)
    twin = torch_impl.to_torch(model)
    for (key, grad), (twin_key, param) in zip(model.named_grads(), twin.named_parameters()):
        assert key == twin_key
        g = scale * rng.standard_normal(grad.shape)
        grad += g
        param.grad = torch.as_tensor(g.copy())
    return model, twin


@given(data=st.data())
def test_clip_grad_norm_matches_torch(data):
    norm_type = data.draw(st.sampled_from([2.0, 1.0, 3.0, math.inf]), label="norm_type")
    scale = data.draw(st.sampled_from([1e-3, 1.0, 10.0]), label="gradient scale")
    max_norm = data.draw(st.sampled_from([0.5, 5.0, 100.0]), label="max_norm")
    rng = np.random.default_rng(data.draw(st.integers(0, 99), label="seed"))
    model, twin = model_with_grads(rng, scale)
    total = scratch.clip_grad_norm_(model, max_norm, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(twin.parameters(), max_norm, norm_type)
    assert isinstance(total, float)
    assert_close(total, total_t.item(), "total norm")
    for key, param in twin.named_parameters():
        assert_close(model.grads[key], param.grad.numpy(), f"clipped grad of {key}")


def test_clip_grad_norm_scales_to_just_below_max_norm_and_never_up():
    rng = np.random.default_rng(1)
    model, _ = model_with_grads(rng, 5.0)
    before = np.sqrt(sum(float(np.sum(g**2)) for g in model.grads.values()))
    total = scratch.clip_grad_norm_(model, 1.0)
    after = np.sqrt(sum(float(np.sum(g**2)) for g in model.grads.values()))
    assert_close(total, before, "returned norm is the norm before clipping")
    assert_close(after, before / (before + 1e-6), "norm after clipping", F64_REL)
    assert after < 1.0
    small = {k: g.copy() for k, g in model.grads.items()}
    scratch.clip_grad_norm_(model, 10.0)  # under the limit: untouched (coefficient clamped)
    assert all(np.array_equal(small[k], g) for k, g in model.grads.items())


@given(data=st.data())
def test_clip_grad_value_matches_torch(data):
    clip_value = data.draw(st.sampled_from([0.01, 0.5, 3.0]), label="clip_value")
    rng = np.random.default_rng(data.draw(st.integers(0, 99), label="seed"))
    model, twin = model_with_grads(rng, 1.0)
    scratch.clip_grad_value_(model, clip_value)
    torch.nn.utils.clip_grad_value_(twin.parameters(), clip_value)
    for key, param in twin.named_parameters():
        assert np.array_equal(model.grads[key], param.grad.numpy()), key
        assert np.max(np.abs(model.grads[key])) <= clip_value


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_clip_grad_norm_with_an_infinite_gradient_does_what_torch_does(norm_type):
    model, twin = model_with_grads(np.random.default_rng(2), 1.0)
    model.grads["head.bias"][0] = np.inf
    dict(twin.named_parameters())["head.bias"].grad[0] = math.inf
    before = {k: g.copy() for k, g in model.grads.items()}
    with pytest.raises(RuntimeError, match="non-finite"):
        scratch.clip_grad_norm_(model, 1.0, norm_type, error_if_nonfinite=True)
    for key, grad in model.grads.items():  # refused before anything was scaled
        np.testing.assert_array_equal(grad, before[key])
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0, norm_type,
                                       error_if_nonfinite=True)
    # without the flag, as torch: the norm is inf, the coefficient 0, the inf entry NaN
    assert scratch.clip_grad_norm_(model, 1.0, norm_type) == math.inf
    total_t = torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0, norm_type)
    assert total_t.item() == math.inf
    for key, param in twin.named_parameters():
        np.testing.assert_array_equal(model.grads[key], param.grad.numpy(), err_msg=key)
    assert np.isnan(model.grads["head.bias"][0])
    assert np.all(model.grads["head.bias"][1:] == 0)


def test_clip_refuses_bad_arguments():
    model = scratch.Linear(2, 2)
    with pytest.raises(TypeError, match="max_norm must be a number"):
        scratch.clip_grad_norm_(model, "1.0")
    with pytest.raises(TypeError, match="clip_value must be a number"):
        scratch.clip_grad_value_(model, None)
    with pytest.raises(TypeError, match="scratch.Module"):
        scratch.clip_grad_norm_([np.zeros(2)], 1.0)
