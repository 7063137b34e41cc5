"""LSTM cell, torch.nn.LSTM's equations (gate order i, f, g, o; no +1 on the forget bias).

Symbols and shapes: the glossary in ``scratch.functional`` (H_out = P with a projection).
Forward:

    x_proj = x @ W_ih.T + b_ih                            (B, 4H)
    gates = x_proj + h_prev @ W_hh.T + b_hh               (B, 4H)
    gates_i | gates_f | gates_g | gates_o = gates         split into four (B, H) blocks
    i = sigmoid(gates_i)        input gate                (B, H)
    f = sigmoid(gates_f)        forget gate               (B, H)
    g = tanh(gates_g)           candidate cell            (B, H)
    o = sigmoid(gates_o)        output gate               (B, H)
    c = f * c_prev + i * g                                (B, H)
    h_full = o * tanh(c)                                  (B, H)
    h = h_full @ W_hr.T   with a projection, else h = h_full        (B, H_out)

Backward, given dh = dL/dh (B, H_out) and dc_next = dL/dc from the step after (B, H), from
the last forward line up:

    dW_hr    = dh.T @ h_full           (P, H)    with a projection
    dh_full  = dh @ W_hr               (B, H)    with a projection, else dh_full = dh
    do       = dh_full * tanh(c)                                  (B, H)
    dc       = dc_next + dh_full * o * (1 - tanh(c)**2)           (B, H)
    di       = dc * g                                             (B, H)
    df       = dc * c_prev                                        (B, H)
    dg       = dc * i                                             (B, H)
    dc_prev  = dc * f                                             (B, H)
    dgates_o = do * o * (1 - o)                                   (B, H)
    dgates_g = dg * (1 - g**2)                                    (B, H)
    dgates_f = df * f * (1 - f)                                   (B, H)
    dgates_i = di * i * (1 - i)                                   (B, H)
    dgates   = [dgates_i | dgates_f | dgates_g | dgates_o]        (B, 4H)  = dx_proj
    dh_prev  = dgates @ W_hh           (B, H_out)
    dx       = dgates @ W_ih           (B, I)
    dW_hh    = dgates.T @ h_prev       (4H, H_out)
    dW_ih    = dgates.T @ x            (4H, I)
    db_ih    = db_hh = dgates.sum(axis=0)     (4H,)
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


def lstm_step_forward(x_proj, h_prev, c_prev, W_hh, b_hh, W_hr=None):
    """One recurrent step, given the input's share of the gates.

    x_proj:  (B, 4H)   x @ W_ih.T + b_ih, computed by the caller
    h_prev:  (B, H_out), c_prev: (B, H)
    W_hh:    (4H, H_out), b_hh: (4H,) or None, W_hr: (P, H) or None
    Returns h (B, H_out), c (B, H) and the cache for lstm_step_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: np.split gives the four blocks in torch's order; b_hh and W_hr may be None.
    gates = x_proj + h_prev @ W_hh.T  # (B, 4H)  {#lstm-gates}
    if b_hh is not None:
        gates = gates + b_hh  # (B, 4H)  {#lstm-gates-bias}
    gates_i, gates_f, gates_g, gates_o = np.split(gates, 4, axis=-1)  # each (B, H)  {#lstm-split}
    i = sigmoid(gates_i)  # (B, H)  input gate  {#lstm-i}
    f = sigmoid(gates_f)  # (B, H)  forget gate  {#lstm-f}
    g = tanh(gates_g)  # (B, H)  candidate cell  {#lstm-g}
    o = sigmoid(gates_o)  # (B, H)  output gate  {#lstm-o}
    c = f * c_prev + i * g  # (B, H)  {#lstm-c}
    tanh_c = tanh(c)  # (B, H)  {#lstm-tanh-c}
    h_full = o * tanh_c  # (B, H)  {#lstm-h}
    h = h_full if W_hr is None else h_full @ W_hr.T  # (B, H_out)  {#lstm-proj}
    return h, c, LSTMStepCache(h_prev, c_prev, i, f, g, o, tanh_c, h_full)
    ### END SOLUTION


class LSTMStepGrads(NamedTuple):
    dgates: np.ndarray  # (B, 4H) dL/dgates, also dL/dx_proj
    dh_prev: np.ndarray  # (B, H_out)
    dc_prev: np.ndarray  # (B, H)


def lstm_step_backward(dh, dc_next, cache, W_hh, W_hr=None):
    """Back through one step.

    dh:      (B, H_out) dL/dh for the state this step produced (its output and the next step)
    dc_next: (B, H)     dL/dc arriving from the next step
    Returns LSTMStepGrads: dgates (B, 4H), the gradient of the gates' pre-activation, dh_prev
    (B, H_out) and dc_prev (B, H). The caller forms dW_hr = dh.T @ h_full.
    """
    ### BEGIN SOLUTION
    ### HINT: the module docstring's backward, line by line; np.hstack joins the blocks.
    h_prev, c_prev, i, f, g, o, tanh_c, h_full = cache
    dh_full = dh if W_hr is None else dh @ W_hr  # (B, H)  back through W_hr  {#lstm-dh-full}
    do = dh_full * tanh_c  # (B, H)  back through h_full = o * tanh(c), to o  {#lstm-do}
    dc = dc_next + dh_full * o * tanh_grad(tanh_c)  # (B, H)  ... to c, plus dc_next  {#lstm-dc}
    di = dc * g  # (B, H)  back through c = f * c_prev + i * g, to i  {#lstm-di}
    df = dc * c_prev  # (B, H)  ... to f  {#lstm-df}
    dg = dc * i  # (B, H)  ... to g  {#lstm-dg}
    dc_prev = dc * f  # (B, H)  ... to c_prev  {#lstm-dc-prev}
    dgates_o = do * sigmoid_grad(o)  # (B, H)  back through o = sigmoid(gates_o)  {#lstm-dgates-o}
    dgates_g = dg * tanh_grad(g)  # (B, H)  back through g = tanh(gates_g)  {#lstm-dgates-g}
    dgates_f = df * sigmoid_grad(f)  # (B, H)  back through f = sigmoid(gates_f)  {#lstm-dgates-f}
    dgates_i = di * sigmoid_grad(i)  # (B, H)  back through i = sigmoid(gates_i)  {#lstm-dgates-i}
    # back through the split: the four blocks joined again in torch's order i | f | g | o
    dgates = np.hstack([dgates_i, dgates_f, dgates_g, dgates_o])  # (B, 4H)  {#lstm-dgates}
    dh_prev = dgates @ W_hh  # (B, H_out)  back through h_prev @ W_hh.T  {#lstm-dh-prev}
    return LSTMStepGrads(dgates, dh_prev, dc_prev)
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
    ### HINT: x_proj, then one lstm_step_forward; b_ih may be None.
    x_proj = x @ W_ih.T  # (B, 4H)  {#lstm-cell-x-proj}
    if b_ih is not None:
        x_proj = x_proj + b_ih  # (B, 4H)  {#lstm-cell-x-proj-bias}
    h, c, step_cache = lstm_step_forward(x_proj, h_prev, c_prev, W_hh, b_hh, W_hr)
    return h, c, LSTMCellCache(x, W_ih, W_hh, W_hr, b_ih is not None, step_cache)
    ### END SOLUTION


def lstm_cell_backward(dh, dc_next, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H_out) and dc_next = dL/dc (B, H):
    the module docstring's equations."""
    ### BEGIN SOLUTION
    ### HINT: lstm_step_backward gives dgates; the rest are products with the cache.
    x, W_ih, W_hh, W_hr, has_bias, step_cache = cache
    dgates, dh_prev, dc_prev = lstm_step_backward(dh, dc_next, step_cache, W_hh, W_hr)
    dx = dgates @ W_ih  # (B, I)  back through x_proj = x @ W_ih.T  {#lstm-cell-dx}
    dW_ih = dgates.T @ x  # (4H, I)  {#lstm-cell-dw-ih}
    dW_hh = dgates.T @ step_cache.h_prev  # (4H, H_out)  {#lstm-cell-dw-hh}
    db_ih = dgates.sum(axis=0) if has_bias else None  # (4H,)  {#lstm-cell-db-ih}
    db_hh = dgates.sum(axis=0) if has_bias else None  # (4H,)  {#lstm-cell-db-hh}
    dW_hr = None if W_hr is None else dh.T @ step_cache.h_full  # (P, H)  {#lstm-cell-dw-hr}
    return LSTMCellGrads(dx, dh_prev, dc_prev, dW_ih, dW_hh, db_ih, db_hh, dW_hr)
    ### END SOLUTION
