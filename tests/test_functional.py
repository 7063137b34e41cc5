"""The study core, scratch.functional: every step and cell function's backward against
central finite differences of its forward, in float64, with and without biases.

The loss is <dh, h> (+ <dc, c> for the LSTM) with random dh, dc; every input of the forward
(the input or its projection, h_prev, c_prev, every weight and bias) is checked. The step
functions leave the weight gradients to their caller, who forms them from the returned
pre-activation gradients exactly as the docstrings say (dW_hh = dgh^T h_prev, db_hh = sum of
dgh, dW_hr = dh^T h_full): that recipe is checked here too.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, assert_matches_fd

from scratch.functional import (
    gru_cell_backward,
    gru_cell_forward,
    gru_step_backward,
    gru_step_forward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_step_backward,
    rnn_step_forward,
)

B, I, H, P = 3, 4, 5, 2


def draw(rng, *shape, scale=1.0):
    return rng.uniform(-scale, scale, size=shape)


def weights(rng, G, bias, in_size, h_in=H):
    """W_ih (G*H, I), W_hh (G*H, h_in), b_ih, b_hh (G*H,) or None: torch's init scale."""
    bound = 1.0 / np.sqrt(H)
    W_ih = draw(rng, G * H, in_size, scale=bound)
    W_hh = draw(rng, G * H, h_in, scale=bound)
    b_ih = draw(rng, G * H, scale=bound) if bias else None
    b_hh = draw(rng, G * H, scale=bound) if bias else None
    return W_ih, W_hh, b_ih, b_hh


BIAS = pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])


# -- Elman RNN ------------------------------------------------------------------------------
@BIAS
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step_backward(nonlinearity, bias):
    rng = np.random.default_rng(1)
    _, W_hh, _, b_hh = weights(rng, 1, bias, I)
    x_proj, h_prev, dh = draw(rng, B, H), draw(rng, B, H), draw(rng, B, H)

    def loss():
        h, _ = rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity)
        return float(np.sum(dh * h))

    h, cache = rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity)
    assert nonlinearity == "tanh" or np.any(h == 0)  # relu's flat part is exercised
    dpre, dh_prev = rnn_step_backward(dh, cache, W_hh)
    assert_matches_fd(dpre, loss, x_proj, "dx_proj")
    assert_matches_fd(dh_prev, loss, h_prev, "dh_prev")
    assert_matches_fd(dpre.T @ h_prev, loss, W_hh, "dW_hh = dpre^T h_prev")
    if bias:
        assert_matches_fd(dpre.sum(axis=0), loss, b_hh, "db_hh = sum of dpre")


@BIAS
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_backward(nonlinearity, bias):
    rng = np.random.default_rng(2)
    W_ih, W_hh, b_ih, b_hh = weights(rng, 1, bias, I)
    x, h_prev, dh = draw(rng, B, I, scale=2.0), draw(rng, B, H), draw(rng, B, H)

    def loss():
        h, _ = rnn_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh, nonlinearity)
        return float(np.sum(dh * h))

    _, cache = rnn_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh, nonlinearity)
    g = rnn_cell_backward(dh, cache)
    assert_matches_fd(g.dx, loss, x, "dx")
    assert_matches_fd(g.dh_prev, loss, h_prev, "dh_prev")
    assert_matches_fd(g.dW_ih, loss, W_ih, "dW_ih")
    assert_matches_fd(g.dW_hh, loss, W_hh, "dW_hh")
    if bias:
        assert_matches_fd(g.db_ih, loss, b_ih, "db_ih")
        assert_matches_fd(g.db_hh, loss, b_hh, "db_hh")
        assert g.db_ih is not g.db_hh  # two arrays: adding into one leaves the other alone
    else:
        assert g.db_ih is None and g.db_hh is None


# -- LSTM ---------------------------------------------------------------------------------------
PROJ = pytest.mark.parametrize("proj", [False, True], ids=["no_proj", "proj"])


@BIAS
@PROJ
def test_lstm_step_backward(proj, bias):
    rng = np.random.default_rng(3)
    H_out = P if proj else H
    _, W_hh, _, b_hh = weights(rng, 4, bias, I, h_in=H_out)
    W_hr = draw(rng, P, H, scale=1.0 / np.sqrt(H)) if proj else None
    x_proj, h_prev, c_prev = draw(rng, B, 4 * H), draw(rng, B, H_out), draw(rng, B, H)
    dh, dc = draw(rng, B, H_out), draw(rng, B, H)

    def loss():
        h, c, _ = lstm_step_forward(x_proj, h_prev, c_prev, W_hh, b_hh, W_hr)
        return float(np.sum(dh * h) + np.sum(dc * c))

    h, c, cache = lstm_step_forward(x_proj, h_prev, c_prev, W_hh, b_hh, W_hr)
    assert h.shape == (B, H_out) and c.shape == (B, H)
    dgates, dh_prev, dc_prev = lstm_step_backward(dh, dc, cache, W_hh, W_hr)
    assert_matches_fd(dgates, loss, x_proj, "dgates (= dx_proj)")
    assert_matches_fd(dh_prev, loss, h_prev, "dh_prev")
    assert_matches_fd(dc_prev, loss, c_prev, "dc_prev")
    assert_matches_fd(dgates.T @ h_prev, loss, W_hh, "dW_hh = dgates^T h_prev")
    if bias:
        assert_matches_fd(dgates.sum(axis=0), loss, b_hh, "db_hh = sum of dgates")
    if proj:
        assert_matches_fd(dh.T @ cache.h_full, loss, W_hr, "dW_hr = dh^T h_full")


@BIAS
@PROJ
def test_lstm_cell_backward(proj, bias):
    rng = np.random.default_rng(4)
    H_out = P if proj else H
    W_ih, W_hh, b_ih, b_hh = weights(rng, 4, bias, I, h_in=H_out)
    W_hr = draw(rng, P, H, scale=1.0 / np.sqrt(H)) if proj else None
    x, h_prev, c_prev = draw(rng, B, I, scale=2.0), draw(rng, B, H_out), draw(rng, B, H)
    dh, dc = draw(rng, B, H_out), draw(rng, B, H)

    def loss():
        h, c, _ = lstm_cell_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh, W_hr)
        return float(np.sum(dh * h) + np.sum(dc * c))

    _, _, cache = lstm_cell_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh, W_hr)
    g = lstm_cell_backward(dh, dc, cache)
    assert_matches_fd(g.dx, loss, x, "dx")
    assert_matches_fd(g.dh_prev, loss, h_prev, "dh_prev")
    assert_matches_fd(g.dc_prev, loss, c_prev, "dc_prev")
    assert_matches_fd(g.dW_ih, loss, W_ih, "dW_ih")
    assert_matches_fd(g.dW_hh, loss, W_hh, "dW_hh")
    if bias:
        assert_matches_fd(g.db_ih, loss, b_ih, "db_ih")
        assert_matches_fd(g.db_hh, loss, b_hh, "db_hh")
        assert g.db_ih is not g.db_hh
    else:
        assert g.db_ih is None and g.db_hh is None
    if proj:
        assert_matches_fd(g.dW_hr, loss, W_hr, "dW_hr")
    else:
        assert g.dW_hr is None


def test_lstm_gate_order_is_i_f_g_o():
    """With every pre-activation but one chunk at 0, the chunk's effect tells which gate it
    is: i scales g into c, f scales c_prev, g is the candidate, o scales tanh(c) into h."""
    W_hh = np.zeros((4 * H, H))
    c_prev = np.full((1, H), 0.5)
    big = 40.0  # sigmoid(40) and tanh(40) are 1 to within 1e-17

    def run(chunk):
        x_proj = np.zeros((1, 4 * H))
        x_proj[:, chunk * H:(chunk + 1) * H] = big
        h, c, _ = lstm_step_forward(x_proj, np.zeros((1, H)), c_prev, W_hh, None)
        return h, c

    half = np.full((1, H), 0.5)  # sigmoid(0); tanh(0) = 0
    _, c_i = run(0)  # i = 1, g = 0:   c = f * c_prev + i * g = 0.5 * 0.5
    _, c_f = run(1)  # f = 1, g = 0:   c = 1 * c_prev
    _, c_g = run(2)  # g = 1:          c = 0.5 * 0.5 + 0.5 * 1
    h_o, c_o = run(3)  # o = 1, g = 0: h = 1 * tanh(c)
    assert_close(c_i, half * c_prev, "c when chunk 0 (i) is saturated")
    assert_close(c_f, c_prev, "c when chunk 1 (f) is saturated")
    assert_close(c_g, half * c_prev + half, "c when chunk 2 (g) is saturated")
    assert_close(h_o, np.tanh(c_o), "h when chunk 3 (o) is saturated")


# -- GRU ------------------------------------------------------------------------------------
@BIAS
def test_gru_step_backward(bias):
    rng = np.random.default_rng(5)
    _, W_hh, _, b_hh = weights(rng, 3, bias, I)
    x_proj, h_prev, dh = draw(rng, B, 3 * H), draw(rng, B, H), draw(rng, B, H)

    def loss():
        h, _ = gru_step_forward(x_proj, h_prev, W_hh, b_hh)
        return float(np.sum(dh * h))

    _, cache = gru_step_forward(x_proj, h_prev, W_hh, b_hh)
    dx_proj, dgh, dh_prev = gru_step_backward(dh, cache, W_hh)
    assert_matches_fd(dx_proj, loss, x_proj, "dx_proj")
    assert_matches_fd(dh_prev, loss, h_prev, "dh_prev")
    assert_matches_fd(dgh.T @ h_prev, loss, W_hh, "dW_hh = dgh^T h_prev")
    if bias:
        assert_matches_fd(dgh.sum(axis=0), loss, b_hh, "db_hh = sum of dgh")
    # dx_proj and dgh agree on the r and z blocks and differ (by the factor r) on the n block
    assert np.array_equal(dx_proj[:, :2 * H], dgh[:, :2 * H])
    assert_close(dgh[:, 2 * H:], dx_proj[:, 2 * H:] * cache.r, "dgh_n = dx_proj_n * r")


@BIAS
def test_gru_cell_backward(bias):
    rng = np.random.default_rng(6)
    W_ih, W_hh, b_ih, b_hh = weights(rng, 3, bias, I)
    x, h_prev, dh = draw(rng, B, I, scale=2.0), draw(rng, B, H), draw(rng, B, H)

    def loss():
        h, _ = gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)
        return float(np.sum(dh * h))

    _, cache = gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)
    g = gru_cell_backward(dh, cache)
    assert_matches_fd(g.dx, loss, x, "dx")
    assert_matches_fd(g.dh_prev, loss, h_prev, "dh_prev")
    assert_matches_fd(g.dW_ih, loss, W_ih, "dW_ih")
    assert_matches_fd(g.dW_hh, loss, W_hh, "dW_hh")
    if bias:
        assert_matches_fd(g.db_ih, loss, b_ih, "db_ih")
        assert_matches_fd(g.db_hh, loss, b_hh, "db_hh")
        assert not np.allclose(g.db_ih[2 * H:], g.db_hh[2 * H:])  # differ in the n block
    else:
        assert g.db_ih is None and g.db_hh is None


def test_gru_reset_gate_multiplies_the_hidden_projection():
    """torch's GRU: n = tanh(x_proj_n + r * (h W_hn^T + b_hn)); the paper's (and most
    textbooks') n = tanh(x_proj_n + (r * h) W_hn^T + b_hn) gives a different h."""
    rng = np.random.default_rng(7)
    W_hh, b_hh = draw(rng, 3 * H, H), draw(rng, 3 * H)
    h_prev, x_proj = draw(rng, 1, H), draw(rng, 1, 3 * H)
    h, cache = gru_step_forward(x_proj, h_prev, W_hh, b_hh)
    gh = h_prev @ W_hh.T + b_hh
    r = 1.0 / (1.0 + np.exp(-(x_proj[:, :H] + gh[:, :H])))
    z = 1.0 / (1.0 + np.exp(-(x_proj[:, H:2 * H] + gh[:, H:2 * H])))
    n_torch = np.tanh(x_proj[:, 2 * H:] + r * gh[:, 2 * H:])
    n_paper = np.tanh(x_proj[:, 2 * H:] + (r * h_prev) @ W_hh[2 * H:].T + b_hh[2 * H:])
    assert_close(h, (1 - z) * n_torch + z * h_prev, "h from torch's equations")
    assert not np.allclose(h, (1 - z) * n_paper + z * h_prev)
    assert_close(cache.gh_n, gh[:, 2 * H:], "the cached hidden projection of n")


def _arrays(value):
    """Every array in a value (nested tuples, NamedTuple caches included)."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in _arrays(item)]
    return []


def _step_pairs(rng, dtype):
    """(name, forward arguments, forward, backward) of each step function at one size:
    forward(*args) -> (results, cache); backward(cache, args) -> gradients."""
    def d(*shape):
        return draw(rng, *shape).astype(dtype)

    dh, dh_p, dc = d(B, H), d(B, P), d(B, H)
    return [
        ("rnn", (d(B, H), d(B, H), d(H, H), d(H), "relu"),
         lambda *a: (lambda h, cache: ((h,), cache))(*rnn_step_forward(*a)),
         lambda cache, a: rnn_step_backward(dh, cache, a[2])),
        ("lstm", (d(B, 4 * H), d(B, P), d(B, H), d(4 * H, P), d(4 * H), d(P, H)),
         lambda *a: (lambda h, c, cache: ((h, c), cache))(*lstm_step_forward(*a)),
         lambda cache, a: lstm_step_backward(dh_p, dc, cache, a[3], a[5])),
        ("gru", (d(B, 3 * H), d(B, H), d(3 * H, H), d(3 * H)),
         lambda *a: (lambda h, cache: ((h,), cache))(*gru_step_forward(*a)),
         lambda cache, a: gru_step_backward(dh, cache, a[2])),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_step_functions_are_pure(dtype):
    """Arrays in, new arrays out: no argument and no array of the cache is written into, every
    result is a new array of the arguments' dtype (none a view of an argument), and the same
    arguments give the same results."""
    rng = np.random.default_rng(7)
    for name, args, forward, backward in _step_pairs(rng, dtype):
        arrays = _arrays(args)
        before = [a.copy() for a in arrays]
        results, cache = forward(*args)
        in_cache = [a.copy() for a in _arrays(cache)]
        grads = backward(cache, args)
        for a, old in zip(arrays + _arrays(cache), before + in_cache):
            np.testing.assert_array_equal(a, old, err_msg=f"{name}: an input was written into")
        for result in list(results) + list(grads):
            assert result.dtype == dtype, name
            assert not any(np.shares_memory(result, a) for a in arrays), name
        again, _ = forward(*args)
        for first, second in zip(results + grads, again + backward(cache, args)):
            np.testing.assert_array_equal(first, second, err_msg=f"{name}: not repeatable")
