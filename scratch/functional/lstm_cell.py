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


class LSTMStepCache(NamedTuple):
    h_prev: np.ndarray  # (B, H_out) state entering the step
    c_prev: np.ndarray  # (B, H)
    i: np.ndarray  # (B, H) input gate
    f: np.ndarray  # (B, H) forget gate
    g: np.ndarray  # (B, H) candidate cell
    o: np.ndarray  # (B, H) output gate
    tanh_c: np.ndarray  # (B, H) tanh of the new cell state
    h_full: np.ndarray  # (B, H) o * tanh(c), before the projection


def lstm_step_forward(x_gates, h_prev, c_prev, W_hh, b_hh, W_hr=None):
    """One recurrent step, given the input's share of the gates.

    x_gates: (B, 4H)   x W_ih^T + b_ih, computed by the caller
    h_prev:  (B, H_out), c_prev: (B, H)
    W_hh:    (4H, H_out), b_hh: (4H,) or None, W_hr: (P, H) or None
    Returns h (B, H_out), c (B, H) and the cache for lstm_step_backward.
    """
    H = c_prev.shape[-1]
    gates = x_gates + h_prev @ W_hh.T  # (B, 4H)
    if b_hh is not None:
        gates = gates + b_hh
    i = sigmoid(gates[:, 0 * H : 1 * H])  # (B, H)
    f = sigmoid(gates[:, 1 * H : 2 * H])  # (B, H)
    g = tanh(gates[:, 2 * H : 3 * H])  # (B, H)
    o = sigmoid(gates[:, 3 * H : 4 * H])  # (B, H)
    c = f * c_prev + i * g  # (B, H)
    tanh_c = tanh(c)  # (B, H)
    h_full = o * tanh_c  # (B, H)
    h = h_full if W_hr is None else h_full @ W_hr.T  # (B, H_out)
    return h, c, LSTMStepCache(h_prev, c_prev, i, f, g, o, tanh_c, h_full)


def lstm_step_backward(dh, dc, cache, W_hh, W_hr=None):
    """Back through one step.

    dh: (B, H_out) dL/dh for the state this step produced (output and next step together)
    dc: (B, H)     dL/dc from the next step
    Returns dgates (B, 4H), the gradient of the gates' pre-activation (also that of x_gates),
    dh_prev (B, H_out) and dc_prev (B, H). The caller forms dW_hr = dh^T h_full.
    """
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
    )  # (B, 4H)
    dh_prev = dgates @ W_hh  # (B, H_out)
    return dgates, dh_prev, dc_prev


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
    x_gates = x @ W_ih.T  # (B, 4H)
    if b_ih is not None:
        x_gates = x_gates + b_ih
    h, c, step_cache = lstm_step_forward(x_gates, h_prev, c_prev, W_hh, b_hh, W_hr)
    return h, c, LSTMCellCache(x, W_ih, W_hh, W_hr, b_ih is not None, step_cache)


def lstm_cell_backward(dh, dc, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H_out) and dc = dL/dc (B, H)."""
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
