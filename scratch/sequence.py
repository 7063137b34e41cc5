"""Back-propagation through time over one direction of one layer.

The loop is the same for every cell kind: run the cell's step forward over the time steps in
order (or in reverse order for the reverse direction), keep each step's cache, then walk the
steps back in the opposite order, carrying dL/dh (and dL/dc for the LSTM) from each step to
the one before it.

What stays out of the loop, because it does not depend on the previous step:
* the input projection x_t W_ih^T + b_ih of every step: one matrix product before the loop,
  done by the caller, who passes ``x_proj`` (T, B, G*H);
* the weight gradients: dW_hh = sum_t dgh_t^T h_prev_t is one product over the stacked steps
  after the loop (and dW_ih, done by the caller, likewise).

Variable lengths are a mask ``valid`` (T, B, 1): where a step is not valid for a sequence
(t >= its length) its state passes through unchanged and its output is zero. The reverse
direction thus starts at each sequence's own last valid step, as torch's packed sequences do.
Backward, a step that did not happen passes dL/dh straight through and contributes nothing.

What the backward pass keeps per step: the cell's step cache (its gates and the state that
entered it), nothing else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scratch.functional.gru_cell import gru_step_backward, gru_step_forward
from scratch.functional.lstm_cell import lstm_step_backward, lstm_step_forward
from scratch.functional.rnn_cell import rnn_step_backward, rnn_step_forward


class DirectionWeights(NamedTuple):
    W_hh: np.ndarray  # (G*H, H_out)
    b_hh: np.ndarray | None  # (G*H,)
    W_hr: np.ndarray | None  # (P, H), LSTM with a projection only


class DirectionCache(NamedTuple):
    mode: str  # "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"
    steps: list  # the step caches, indexed by time step t
    valid: np.ndarray | None  # (T, B, 1) bool, None when every step is valid
    reverse: bool


class DirectionGrads(NamedTuple):
    dW_hh: np.ndarray
    db_hh: np.ndarray | None
    dW_hr: np.ndarray | None


def _step_forward(mode, x_proj_t, h, c, weights):
    """One step of the cell named by mode. Returns (h, c, cache); c is None but for LSTM."""
    if mode == "LSTM":
        return lstm_step_forward(x_proj_t, h, c, weights.W_hh, weights.b_hh, weights.W_hr)
    if mode == "GRU":
        h, cache = gru_step_forward(x_proj_t, h, weights.W_hh, weights.b_hh)
        return h, None, cache
    nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
    h, cache = rnn_step_forward(x_proj_t, h, weights.W_hh, weights.b_hh, nonlinearity)
    return h, None, cache


def _step_backward(mode, dh, dc, cache, weights):
    """Back through one step. Returns (dx_proj, dgh, dh_prev, dc_prev).

    dx_proj is the gradient of the input projection x W_ih^T + b_ih, dgh that of the hidden
    projection h_prev W_hh^T + b_hh. They are the same array but for the GRU.
    """
    if mode == "LSTM":
        dgates, dh_prev, dc_prev = lstm_step_backward(dh, dc, cache, weights.W_hh, weights.W_hr)
        return dgates, dgates, dh_prev, dc_prev
    if mode == "GRU":
        dgi, dgh, dh_prev = gru_step_backward(dh, cache, weights.W_hh)
        return dgi, dgh, dh_prev, None
    dpre, dh_prev = rnn_step_backward(dh, cache, weights.W_hh)
    return dpre, dpre, dh_prev, None


def direction_forward(mode, x_proj, h0, c0, weights, valid=None, reverse=False):
    """Run one direction of one layer over the whole sequence.

    x_proj:  (T, B, G*H)  x_t W_ih^T + b_ih for every step
    h0:      (B, H_out),  c0: (B, H) for LSTM, else None
    valid:   (T, B, 1) bool or None
    Returns output (T, B, H_out), h_n (B, H_out), c_n (B, H) or None, and the cache.
    """
    T, B = x_proj.shape[:2]
    output = np.zeros((T, B, h0.shape[-1]), dtype=x_proj.dtype)
    steps: list = [None] * T
    h, c = h0, c0
    for t in reversed(range(T)) if reverse else range(T):
        h_new, c_new, steps[t] = _step_forward(mode, x_proj[t], h, c, weights)
        if valid is None:
            h, c = h_new, c_new
            output[t] = h_new
        else:
            h = np.where(valid[t], h_new, h)
            c = None if c is None else np.where(valid[t], c_new, c)
            output[t] = np.where(valid[t], h_new, 0.0)
    return output, h, c, DirectionCache(mode, steps, valid, reverse)


def direction_backward(doutput, dh_n, dc_n, cache, weights):
    """Back-propagate through one direction of one layer.

    doutput: (T, B, H_out) dL/d output of this direction
    dh_n:    (B, H_out) dL/dh_n,  dc_n: (B, H) dL/dc_n for LSTM, else None
    Returns dx_proj (T, B, G*H), dh0 (B, H_out), dc0 (B, H) or None, and the gradients of the
    recurrent weights (DirectionGrads). dW_ih, b_ih and the input gradient are the caller's:
    they are products of dx_proj with the layer input and W_ih.
    """
    mode, steps, valid, reverse = cache
    T, B = doutput.shape[:2]
    GH = weights.W_hh.shape[0]
    dx_proj = np.empty((T, B, GH), dtype=doutput.dtype)
    dgh = dx_proj if mode != "GRU" else np.empty_like(dx_proj)
    dh_steps = np.empty_like(doutput)  # dL/dh of each step that happened, for dW_hr
    dh, dc = dh_n, dc_n
    for t in range(T) if reverse else reversed(range(T)):
        dh_t = dh + doutput[t]  # from the next step and from this step's output
        dc_t = dc
        if valid is not None:  # a step that did not happen gets no gradient
            dh_t = dh_t * valid[t]
            dc_t = None if dc is None else dc * valid[t]
        dx_proj[t], dgh_t, dh_prev, dc_prev = _step_backward(mode, dh_t, dc_t, steps[t], weights)
        if dgh is not dx_proj:
            dgh[t] = dgh_t
        dh_steps[t] = dh_t
        if valid is not None:  # ...and passes dL/dh (dL/dc) of its state straight through
            dh_prev = dh_prev + dh * ~valid[t]
            dc_prev = None if dc is None else dc_prev + dc * ~valid[t]
        dh, dc = dh_prev, dc_prev

    h_prev = np.stack([step.h_prev for step in steps])  # (T, B, H_out)
    dW_hh = dgh.reshape(T * B, GH).T @ h_prev.reshape(T * B, h_prev.shape[-1])  # (G*H, H_out)
    db_hh = None if weights.b_hh is None else dgh.sum(axis=(0, 1))  # (G*H,)
    dW_hr = None
    if weights.W_hr is not None:
        h_full = np.stack([step.h_full for step in steps])  # (T, B, H)
        dh_2d = dh_steps.reshape(T * B, dh_steps.shape[-1])  # (T*B, P)
        dW_hr = dh_2d.T @ h_full.reshape(T * B, h_full.shape[-1])  # (P, H)
    return dx_proj, dh, dc, DirectionGrads(dW_hh, db_hh, dW_hr)
