"""Linear, Embedding, MSELoss and CrossEntropyLoss against torch and against finite differences.

Every input, weight and upstream gradient is drawn at random and non-zero.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import F64_REL, FD_REL, assert_close, assert_matches_fd, numerical_gradient
from hypothesis import given
from hypothesis import strategies as st

import scratch
import torch_impl
from parity.tolerances import tolerance
from scratch.losses import flat_cross_entropy

DTYPES = [np.float64, np.float32]


def rel_for(dtype) -> float:
    """One layer, one step: the float64 oracle criterion, or the float32 one of that depth."""
    return F64_REL if np.dtype(dtype) == np.float64 else tolerance(dtype, 1, 1)


def t(a, requires_grad=False):
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


# -- Linear ---------------------------------------------------------------------------------
@given(data=st.data())
def test_linear_matches_torch(data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    lead = data.draw(st.lists(st.integers(1, 3), max_size=3), label="leading dims")
    n_in = data.draw(st.integers(1, 5), label="in_features")
    n_out = data.draw(st.integers(1, 5), label="out_features")
    bias = data.draw(st.booleans(), label="bias")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    layer = scratch.Linear(n_in, n_out, bias=bias, dtype=dtype, seed=1)
    twin = torch_impl.to_torch(layer)
    x = rng.standard_normal((*lead, n_in)).astype(dtype)
    dy = rng.standard_normal((*lead, n_out)).astype(dtype)

    y = layer(x)
    dx = layer.backward(dy)
    xt = t(x, requires_grad=True)
    yt = twin(xt)
    yt.backward(t(dy))
    rel = rel_for(dtype)
    assert y.dtype == dtype and dx.dtype == dtype
    assert_close(y, yt.detach().numpy(), "y", rel)
    assert_close(dx, xt.grad.numpy(), "dx", rel)
    for name, param in twin.named_parameters():
        assert param.grad is not None
        assert_close(layer.grads[name], param.grad.numpy(), f"d{name}", rel)


def test_linear_matches_finite_differences():
    rng = np.random.default_rng(0)
    layer = scratch.Linear(4, 3, seed=2)
    x = rng.standard_normal((2, 5, 4))
    weights = rng.standard_normal((2, 5, 3))  # a random linear loss: L = sum(weights * y)

    def loss():
        return float(np.sum(weights * layer(x)))

    loss()
    dx = layer.backward(weights)
    assert_matches_fd(dx, loss, x, "dx")
    for name, param in layer.named_parameters():
        assert_matches_fd(layer.grads[name], loss, param, f"d{name}")


def test_linear_init_is_torchs_uniform_and_seeded():
    layer = scratch.Linear(25, 400, seed=3)
    bound = 1 / np.sqrt(25)
    for name, param in layer.named_parameters():
        assert np.all(np.abs(param) <= bound), name
        assert np.max(np.abs(param)) > 0.95 * bound, f"{name} does not fill U(-b, b)"
        assert abs(param.mean()) < 0.1 * bound, name
    again = scratch.Linear(25, 400, seed=3)
    other = scratch.Linear(25, 400, seed=4)
    same = [np.array_equal(a, b) for (_, a), (_, b) in
            zip(layer.named_parameters(), again.named_parameters())]
    different = [np.array_equal(a, b) for (_, a), (_, b) in
                 zip(layer.named_parameters(), other.named_parameters())]
    assert all(same) and not any(different)
    assert [k for k, _ in layer.named_parameters()] == ["weight", "bias"]


def test_linear_accumulates_gradients_and_checks_call_order():
    rng = np.random.default_rng(1)
    layer = scratch.Linear(3, 2, seed=0)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dy1, dy2 = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    with pytest.raises(scratch.CallOrderError, match="before forward"):
        layer.backward(dy1)
    layer(x1)
    layer.backward(dy1)
    with pytest.raises(scratch.CallOrderError, match="already"):
        layer.backward(dy1)
    layer(x2)
    layer.backward(dy2)
    expected = dy1.T @ x1 + dy2.T @ x2
    assert_close(layer.grads["weight"], expected, "accumulated dW")
    layer.zero_grad()
    assert not np.any(layer.grads["weight"]) and not np.any(layer.grads["bias"])


def test_linear_refuses_bad_input():
    layer = scratch.Linear(3, 2)
    with pytest.raises(ValueError, match=r"in_features = 3.*\(4, 5\)"):
        layer(np.zeros((4, 5)))
    with pytest.raises(TypeError, match="float32"):
        layer(np.zeros((4, 3), dtype=np.float32))
    layer(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"grad_output has shape \(4, 3\), expected \(4, 2\)"):
        layer.backward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)))  # the failed call left the cache in place
    with pytest.raises(ValueError, match="in_features"):
        scratch.Linear(0, 2)
    with pytest.raises(TypeError, match="bias"):
        scratch.Linear(2, 2, bias=1)


# -- Embedding ------------------------------------------------------------------------------
@given(data=st.data())
def test_embedding_matches_torch(data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    num = data.draw(st.integers(1, 6), label="num_embeddings")
    dim = data.draw(st.integers(1, 4), label="embedding_dim")
    padding_idx = data.draw(st.none() | st.integers(-num, num - 1), label="padding_idx")
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3), label="index shape")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    table = scratch.Embedding(num, dim, padding_idx=padding_idx, dtype=dtype, seed=5)
    twin = torch_impl.to_torch(table)
    idx = rng.integers(0, num, size=shape)  # repeats are likely: their gradients add up
    dy = rng.standard_normal((*shape, dim)).astype(dtype)

    y = table(idx)
    assert table.backward(dy) is None
    yt = twin(torch.as_tensor(idx))
    yt.backward(t(dy))
    rel = rel_for(dtype)
    assert_close(y, yt.detach().numpy(), "y", rel)
    assert_close(table.grads["weight"], twin.weight.grad.numpy(), "dW", rel)
    if padding_idx is not None:
        row = padding_idx % num
        assert not np.any(table.state_dict()["weight"][row])
        assert not np.any(table.grads["weight"][row])


def test_embedding_init_is_standard_normal_and_padding_row_zero():
    table = scratch.Embedding(200, 50, padding_idx=-1, seed=0)
    assert table.padding_idx == 199
    w = table.state_dict()["weight"]
    assert not np.any(w[199])
    body = w[:199]
    assert abs(body.mean()) < 0.02 and abs(body.std() - 1.0) < 0.02
    assert np.array_equal(w, scratch.Embedding(200, 50, padding_idx=-1, seed=0).state_dict()
                          ["weight"])


def test_embedding_matches_finite_differences():
    rng = np.random.default_rng(2)
    table = scratch.Embedding(5, 3, padding_idx=2, seed=1)
    idx = np.array([[0, 2, 4], [4, 4, 1]])
    weights = rng.standard_normal((2, 3, 3))
    table(idx)
    table.backward(weights)
    w = dict(table.named_parameters())["weight"]

    def loss():
        return float(np.sum(weights * table(idx)))

    numerical = numerical_gradient(loss, w)
    rows = [0, 1, 3, 4]  # the padding row (2) is exempt: torch gives it no gradient
    assert_close(table.grads["weight"][rows], numerical[rows], "dW (vs finite differences)",
                 FD_REL)
    assert not np.any(table.grads["weight"][2]) and np.any(numerical[2])


def test_embedding_refuses_bad_input():
    table = scratch.Embedding(4, 2)
    with pytest.raises(TypeError, match="integer indices.*float64"):
        table(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"0\.\.3.*from 0 to 4"):
        table(np.array([0, 4]))
    with pytest.raises(ValueError, match="padding_idx"):
        scratch.Embedding(4, 2, padding_idx=4)
    table(np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"grad_output has shape \(2, 2\), expected \(1, 2, 2\)"):
        table.backward(np.ones((2, 2)))


# -- MSELoss --------------------------------------------------------------------------------
@given(data=st.data())
def test_mse_matches_torch(data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    shape = data.draw(st.lists(st.integers(1, 4), max_size=3), label="shape")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    x = rng.standard_normal(shape).astype(dtype)
    target = rng.standard_normal(shape).astype(dtype)
    criterion = scratch.MSELoss(reduction)
    loss = criterion(x, target)
    upstream = rng.standard_normal(np.shape(loss)).astype(dtype)
    grad = criterion.backward(upstream)

    xt = t(x, requires_grad=True)
    loss_t = F.mse_loss(xt, t(target), reduction=reduction)
    loss_t.backward(t(upstream))
    rel = rel_for(dtype)
    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype
    assert_close(loss, loss_t.detach().numpy(), "loss", rel)
    assert_close(grad, xt.grad.numpy(), "dL/dinput", rel)


def test_mse_matches_finite_differences():
    rng = np.random.default_rng(3)
    x, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    for reduction in ("mean", "sum"):
        criterion = scratch.MSELoss(reduction)
        criterion(x, target)
        grad = criterion.backward()
        assert_matches_fd(grad, lambda c=criterion: float(c(x, target)), x, reduction)


def test_mse_refuses_bad_input():
    criterion = scratch.MSELoss()
    with pytest.raises(ValueError, match=r"target has shape \(3, 1\), expected \(3,\)"):
        criterion(np.zeros(3), np.zeros((3, 1)))  # torch would broadcast this to (3, 3)
    with pytest.raises(TypeError, match="float32"):
        criterion(np.zeros(3), np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="reduction"):
        scratch.MSELoss("average")
    none = scratch.MSELoss("none")
    none(np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"grad_loss.*\(2,\)"):
        none.backward()
    with pytest.raises(scratch.CallOrderError):
        criterion.backward()


# -- CrossEntropyLoss -----------------------------------------------------------------------
@given(data=st.data())
def test_cross_entropy_matches_torch(data):
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    C = data.draw(st.integers(1, 6), label="classes")
    single = data.draw(st.booleans(), label="one example, logits (C,)")
    N = 1 if single else data.draw(st.integers(1, 6), label="N")
    ignore_index = data.draw(st.sampled_from([-100, 0, C - 1]), label="ignore_index")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    logits = (3 * rng.standard_normal((N, C))).astype(dtype)
    target = rng.integers(0, C, size=N)
    if ignore_index == -100:
        target[rng.random(N) < 0.3] = -100
    if single:
        logits, target = logits[0], target[0]
    criterion = scratch.CrossEntropyLoss(reduction, ignore_index=ignore_index)
    loss = criterion(logits, target)
    upstream = rng.standard_normal(np.shape(loss)).astype(dtype)
    grad = criterion.backward(upstream)

    zt = t(logits, requires_grad=True)
    loss_t = F.cross_entropy(zt, torch.as_tensor(target), reduction=reduction,
                             ignore_index=ignore_index)
    loss_t.backward(t(upstream))
    if np.all(np.isnan(loss_t.detach().numpy())):  # mean over no target at all
        assert np.all(np.isnan(loss))
        assert np.array_equal(grad, zt.grad.numpy())  # zeros on both sides
        return
    rel = rel_for(dtype)
    assert_close(loss, loss_t.detach().numpy(), "loss", rel)
    assert_close(grad, zt.grad.numpy(), "dL/dlogits", rel)


def test_cross_entropy_mean_counts_only_kept_targets_and_matches_fd():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((5, 4))
    target = np.array([1, -100, 3, 0, -100])
    criterion = scratch.CrossEntropyLoss()
    loss = criterion(logits, target)
    grad = criterion.backward()
    kept = target != -100
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert_close(loss, -log_p[kept, target[kept]].sum() / 3, "mean over the 3 kept")
    assert not np.any(grad[~kept])
    assert_matches_fd(grad, lambda: float(criterion(logits, target)), logits, "dlogits")


def test_cross_entropy_all_ignored_is_nan_like_torch():
    criterion = scratch.CrossEntropyLoss()
    loss = criterion(np.ones((2, 3)), np.array([-100, -100]))
    assert np.isnan(loss)
    assert np.isnan(F.cross_entropy(torch.ones(2, 3), torch.tensor([-100, -100])).item())


def test_cross_entropy_refuses_bad_input():
    criterion = scratch.CrossEntropyLoss()
    with pytest.raises(TypeError, match="integer class indices, got dtype float64"):
        criterion(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"target values must be in 0\.\.2.*\[3\]"):
        criterion(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"target has shape \(3,\), expected \(2,\)"):
        criterion(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(N, C\) or \(C,\)"):
        criterion(np.zeros((2, 3, 4)), np.zeros((2, 4), dtype=np.int64))


def test_flat_cross_entropy_is_torchs_reshape():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((4, 3, 5))
    targets = rng.integers(0, 5, size=(4, 3))
    loss, grad = flat_cross_entropy(scratch.CrossEntropyLoss(), logits, targets)
    zt = t(logits, requires_grad=True)
    loss_t = F.cross_entropy(zt.reshape(-1, 5), torch.as_tensor(targets).reshape(-1))
    loss_t.backward()
    assert grad.shape == logits.shape
    assert_close(loss, loss_t.item(), "loss")
    assert_close(grad, zt.grad.numpy(), "dlogits")
    with pytest.raises(ValueError, match=r"targets has shape \(12,\)"):
        flat_cross_entropy(scratch.CrossEntropyLoss(), logits, targets.reshape(-1))
