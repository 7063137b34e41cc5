"""LSTM cell, torch.nn.LSTM's equations (gate order i, f, g, o; no +1 on the forget bias).

    gates = x W_ih^T + b_ih + h_prev W_hh^T + b_hh        (B, 4H), chunks i | f | g | o
    i = sigmoid(gates_i)    input gate                    (B, H)
    f = sigmoid(gates_f)    forget gate                   (B, H)
    g = tanh(gates_g)       candidate cell                (B, H)
    o = sigmoid(gates_o)    output gate                   (B, H)
    c = f * c_prev + i * g                                (B, H)
    h = o * tanh(c)                                       (B, H)
    with proj_size P > 0:  h <- h W_hr^T                  (B, P)

Backward, with dh = dL/dh (B, H_out) and dc = dL/dc from later steps (B, H):

    dW_hr   = dh^T h_full,  dh_full = dh W_hr               (only with a projection)
    do      = dh_full * tanh(c)
    dc      = dc + dh_full * o * (1 - tanh(c)**2)
    di, df, dg, dc_prev = dc * g, dc * c_prev, dc * i, dc * f
    dgates  = [di * i(1-i), df * f(1-f), dg * (1-g**2), do * o(1-o)]     (B, 4H)
    dh_prev = dgates W_hh,  dx = dgates W_ih,  dW_* = dgates^T (input of that product)
    db_ih   = db_hh = sum over the batch of dgates
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scratch.activations import sigmoid, sigmoid_grad, tanh, tanh_grad
from scratch.functional.products import hidden_product


class LSTMStepCache(NamedTuple):
    h_prev: np.ndarray  # (B, H_out) state entering the step
    c_prev: np.ndarray  # (B, H)
    i: np.ndarray  # (B, H) input gate
    f: np.ndarray  # (B, H) forget gate
    g: np.ndarray  # (B, H) candidate cell
    o: np.ndarray  # (B, H) output gate
    tanh_c: np.ndarray  # (B, H) tanh of the new cell state
    h_full: np.ndarray  # (B, H) o * tanh(c), before the projection


class LSTMCacheOut(NamedTuple):
    """Arrays for lstm_step_forward to write what its cache keeps into, each (B, H). The
    sequence loop passes its slots for the step, so that a step allocates nothing it keeps."""

    i: np.ndarray | None
    f: np.ndarray | None
    g: np.ndarray | None
    o: np.ndarray | None
    c: np.ndarray | None
    tanh_c: np.ndarray | None
    h_full: np.ndarray | None  # with a projection only (without one, h_full is h: see out)


NEW_ARRAYS = LSTMCacheOut(None, None, None, None, None, None, None)


def lstm_step_forward(x_gates, h_prev, c_prev, W_hh, b_hh, W_hr=None, *, out=None,
                      cache_out=None):
    """One recurrent step, given the input's share of the gates.

    x_gates:   (B, 4H)   x W_ih^T + b_ih, computed by the caller
    h_prev:    (B, H_out), c_prev: (B, H)
    W_hh:      (4H, H_out), b_hh: (4H,) or None, W_hr: (P, H) or None
    out:       optional (B, H_out) array to write h into; a new array when None
    cache_out: optional LSTMCacheOut, the arrays to write the cached values into; new arrays
               when None
    Returns h (B, H_out), c (B, H) and the cache for lstm_step_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: gates = x_gates + h_prev W_hh^T (+ b_hh), chunks i | f | g | o; sigmoid for i, f, o,
    ### HINT: tanh for g; c = f * c_prev + i * g; h = o * tanh(c), then h W_hr^T with a projection.
    ### HINT: h into out when given, the cached values into cache_out's arrays when given.
    H = c_prev.shape[-1]
    keep = NEW_ARRAYS if cache_out is None else cache_out
    gates = x_gates + hidden_product(h_prev, W_hh)  # (B, 4H)  x_gates + h_prev W_hh^T
    if b_hh is not None:
        gates += b_hh
    i = sigmoid(gates[:, 0 * H : 1 * H], out=keep.i)  # (B, H)
    f = sigmoid(gates[:, 1 * H : 2 * H], out=keep.f)  # (B, H)
    g = tanh(gates[:, 2 * H : 3 * H], out=keep.g)  # (B, H)
    o = sigmoid(gates[:, 3 * H : 4 * H], out=keep.o)  # (B, H)
    c = np.add(f * c_prev, i * g, out=keep.c)  # (B, H)  f * c_prev + i * g
    tanh_c = tanh(c, out=keep.tanh_c)  # (B, H)
    h_full = np.multiply(o, tanh_c, out=out if W_hr is None else keep.h_full)  # (B, H)
    h = h_full if W_hr is None else np.matmul(h_full, W_hr.T, out=out)  # (B, H_out)
    return h, c, LSTMStepCache(h_prev, c_prev, i, f, g, o, tanh_c, h_full)
    ### END SOLUTION


def lstm_step_backward(dh, dc, cache, W_hh, W_hr=None, *, out=None):
    """Back through one step.

    dh:  (B, H_out) dL/dh for the state this step produced (output and next step together)
    dc:  (B, H)     dL/dc from the next step
    out: optional (B, 4H) array to write dgates into; a new array when None
    Returns dgates (B, 4H), the gradient of the gates' pre-activation (also that of x_gates),
    dh_prev (B, H_out) and dc_prev (B, H). The caller forms dW_hr = dh^T h_full.
    """
    ### BEGIN SOLUTION
    ### HINT: mirror the forward from its last line up: dh_full (through W_hr), do, dc (this step's
    ### HINT: share added to the dc given), di, df, dg, dc_prev; dgates in i | f | g | o (into out).
    h_prev, c_prev, i, f, g, o, tanh_c, h_full = cache
    dh_full = dh if W_hr is None else dh @ W_hr  # (B, H)
    do = dh_full * tanh_c  # (B, H)
    dc = dc + dh_full * o * tanh_grad(tanh_c)  # (B, H)
    di = dc * g  # (B, H)
    df = dc * c_prev  # (B, H)
    dg = dc * i  # (B, H)
    dc_prev = dc * f  # (B, H)
    dgates = np.concatenate(
        [di * sigmoid_grad(i), df * sigmoid_grad(f), dg * tanh_grad(g), do * sigmoid_grad(o)],
        axis=-1,
        out=out,
    )  # (B, 4H)
    dh_prev = dgates @ W_hh  # (B, H_out)
    return dgates, dh_prev, dc_prev
    ### END SOLUTION


class LSTMCellCache(NamedTuple):
    x: np.ndarray  # (B, I)
    W_ih: np.ndarray  # (4H, I)
    W_hh: np.ndarray  # (4H, H_out)
    W_hr: np.ndarray | None  # (P, H)
    has_bias: bool
    step: LSTMStepCache


class LSTMCellGrads(NamedTuple):
    dx: np.ndarray  # (B, I)
    dh_prev: np.ndarray  # (B, H_out)
    dc_prev: np.ndarray  # (B, H)
    dW_ih: np.ndarray  # (4H, I)
    dW_hh: np.ndarray  # (4H, H_out)
    db_ih: np.ndarray | None  # (4H,)
    db_hh: np.ndarray | None  # (4H,)
    dW_hr: np.ndarray | None  # (P, H)


def lstm_cell_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih=None, b_hh=None, W_hr=None):
    """The whole cell. x: (B, I), h_prev: (B, H_out), c_prev: (B, H).

    Returns h (B, H_out), c (B, H) and the cache for lstm_cell_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: x_gates = x W_ih^T (+ b_ih), then one lstm_step_forward. Return h, c, LSTMCellCache.
    x_gates = x @ W_ih.T  # (B, 4H)
    if b_ih is not None:
        x_gates = x_gates + b_ih
    h, c, step_cache = lstm_step_forward(x_gates, h_prev, c_prev, W_hh, b_hh, W_hr)
    return h, c, LSTMCellCache(x, W_ih, W_hh, W_hr, b_ih is not None, step_cache)
    ### END SOLUTION


def lstm_cell_backward(dh, dc, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H_out) and dc = dL/dc (B, H)."""
    ### BEGIN SOLUTION
    ### HINT: lstm_step_backward gives dgates; then dx, dW_ih, dW_hh, the two (equal) bias sums and,
    ### HINT: with a projection, dW_hr = dh^T h_full. Return LSTMCellGrads.
    x, W_ih, W_hh, W_hr, has_bias, step_cache = cache
    dgates, dh_prev, dc_prev = lstm_step_backward(dh, dc, step_cache, W_hh, W_hr)
    dx = dgates @ W_ih  # (B, I)
    dW_ih = dgates.T @ x  # (4H, I)
    dW_hh = dgates.T @ step_cache.h_prev  # (4H, H_out)
    db = dgates.sum(axis=0) if has_bias else None  # (4H,)
    dW_hr = None if W_hr is None else dh.T @ step_cache.h_full  # (P, H)
    return LSTMCellGrads(
        dx, dh_prev, dc_prev, dW_ih, dW_hh, db, None if db is None else db.copy(), dW_hr
    )
    ### END SOLUTION
