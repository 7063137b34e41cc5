"""Back-propagation through time over one direction of one layer.

The loop is the same for every cell kind: call the cell's step forward for t = 0, 1, ...,
T - 1 (for the reverse direction T - 1, ..., 0), carrying h (and c for the LSTM) from each
step to the next and keeping each step's cache; then walk the caches back in the opposite
order, carrying dL/dh (and dL/dc) from each step to the one before it.

What stays out of the loop, because it does not depend on the previous step:
* the input projection x_t @ W_ih.T + b_ih of every step: one matrix product before the
  loop, done by the caller (the layer), who passes ``x_proj`` (T, B, G*H);
* the weight gradients, which are sums over time: dW_hh = sum over t of dgh_t.T @ h_prev_t
  is one product over the stacked steps after the loop (and dW_ih, done by the caller,
  likewise).

Variable lengths are a mask ``valid`` (T, B, 1): valid[t, b] is True while t is below the
length of sequence b. Where a step is not valid for a sequence, its state passes through
unchanged and its output is zero; the reverse direction thus starts at each sequence's own
last valid step, as torch's packed sequences do. Backward, a step that did not happen passes
dL/dh (and dL/dc) straight through and contributes nothing.
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
    dW_hh: np.ndarray  # (G*H, H_out)
    db_hh: np.ndarray | None  # (G*H,)
    dW_hr: np.ndarray | None  # (P, H)


def _step_forward(mode, x_proj_t, h_prev, c_prev, weights):
    """Step t of the cell named by mode. Returns (h, c, cache); c is None but for LSTM."""
    if mode == "LSTM":
        return lstm_step_forward(x_proj_t, h_prev, c_prev, weights.W_hh, weights.b_hh,
                                 weights.W_hr)
    if mode == "GRU":
        h, cache = gru_step_forward(x_proj_t, h_prev, weights.W_hh, weights.b_hh)
        return h, None, cache
    nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
    h, cache = rnn_step_forward(x_proj_t, h_prev, weights.W_hh, weights.b_hh, nonlinearity)
    return h, None, cache


def _step_backward(mode, dh, dc, cache, weights):
    """Back through one step. Returns (dx_proj_t, dgh_t, dh_prev, dc_prev): the gradients of
    the input projection x @ W_ih.T + b_ih and of the hidden projection h_prev @ W_hh.T + b_hh
    (the same array but for the GRU), of h_prev, and of c_prev (None but for LSTM)."""
    if mode == "LSTM":
        dgates, dh_prev, dc_prev = lstm_step_backward(dh, dc, cache, weights.W_hh, weights.W_hr)
        return dgates, dgates, dh_prev, dc_prev
    if mode == "GRU":
        dx_proj, dgh, dh_prev = gru_step_backward(dh, cache, weights.W_hh)
        return dx_proj, dgh, dh_prev, None
    dpre, dh_prev = rnn_step_backward(dh, cache, weights.W_hh)
    return dpre, dpre, dh_prev, None


def flatten_steps(a):
    """(T, B, n) -> (T*B, n): the rows of all steps stacked, for one product over all steps."""
    return a.reshape(-1, a.shape[-1])


def direction_forward(mode, x_proj, h0, c0, weights, valid=None, reverse=False):
    """Run one direction of one layer over the whole sequence.

    x_proj:  (T, B, G*H)  x_t @ W_ih.T + b_ih for every step
    h0:      (B, H_out),  c0: (B, H) for LSTM, else None
    weights: DirectionWeights
    valid:   (T, B, 1) bool or None
    Returns output (T, B, H_out), h_n (B, H_out), c_n (B, H) or None, and the cache.
    """
    ### BEGIN SOLUTION
    ### HINT: for t in time order (reversed for reverse): h, c, cache = _step_forward(...) from
    ### HINT: the h and c of the step before; keep each step's h and cache, indexed by t. With
    ### HINT: valid, a sequence past its length keeps its h and c: np.where(valid[t], new, old).
    ### HINT: output = the h of every step stacked, zero where not valid. Return output, the last
    ### HINT: h, the last c, DirectionCache(mode, steps, valid, reverse).
    T = x_proj.shape[0]
    h, c = h0, c0
    outputs, steps = [None] * T, [None] * T
    for t in reversed(range(T)) if reverse else range(T):  # time order  {#seq-forward-order}
        h_new, c_new, steps[t] = _step_forward(mode, x_proj[t], h, c, weights)  # {#seq-step}
        if valid is not None:  # a sequence past its length keeps its state
            h_new = np.where(valid[t], h_new, h)  # (B, H_out)  {#seq-mask-h}
            c_new = None if c is None else np.where(valid[t], c_new, c)  # (B, H)  {#seq-mask-c}
        h, c = h_new, c_new  # {#seq-carry-h}
        outputs[t] = h
    output = np.stack(outputs)  # (T, B, H_out), in time order
    if valid is not None:  # and its output there is zero
        output = np.where(valid, output, 0.0)  # (T, B, H_out)  {#seq-mask-output}
    return output, h, c, DirectionCache(mode, steps, valid, reverse)
    ### END SOLUTION


def direction_backward(doutput, dh_n, dc_n, cache, weights):
    """Back-propagate through one direction of one layer.

    doutput: (T, B, H_out) dL/d output of this direction
    dh_n:    (B, H_out) dL/dh_n,  dc_n: (B, H) dL/dc_n for LSTM, else None
    Returns dx_proj (T, B, G*H), dh0 (B, H_out), dc0 (B, H) or None, and the gradients of the
    recurrent weights (DirectionGrads). dW_ih, b_ih and the input gradient are the caller's:
    they are products of dx_proj with the layer input and W_ih.
    """
    ### BEGIN SOLUTION
    ### HINT: walk the steps in the opposite order to the forward's, carrying dh_next (and
    ### HINT: dc_next) from the step after: dh = dh_next + doutput[t]; _step_backward gives
    ### HINT: dx_proj[t], dgh[t], dh_prev, dc_prev. With valid, a step that did not happen gets
    ### HINT: dh = 0 (dc = 0) and passes dh_next (dc_next) straight through to the step before.
    ### HINT: After the loop: dW_hh = dgh.T @ h_prev, db_hh = dgh summed, dW_hr = dh.T @ h_full,
    ### HINT: each one product or sum over all steps.
    mode, steps, valid, reverse = cache
    T = len(steps)
    dx_proj, dgh, dh_steps = [None] * T, [None] * T, [None] * T
    dh_next, dc_next = dh_n, dc_n  # from the step after (for the last step: from h_n, c_n)
    for t in range(T) if reverse else reversed(range(T)):  # reversed  {#seq-backward-order}
        dh = dh_next + doutput[t]  # (B, H_out)  from the step after and the output  {#seq-carry-dh}
        dc = dc_next  # (B, H) or None
        if valid is not None:  # a step past a sequence's length did not happen: no gradient
            dh = np.where(valid[t], dh, 0.0)  # (B, H_out)  {#seq-mask-dh}
            dc = None if dc is None else np.where(valid[t], dc, 0.0)  # (B, H)  {#seq-mask-dc}
        dx_proj[t], dgh[t], dh_prev, dc_prev = _step_backward(  # {#seq-step-back}
            mode, dh, dc, steps[t], weights)
        dh_steps[t] = dh
        if valid is not None:  # ...and passes dL/dh (dL/dc) of its state straight through
            dh_prev = np.where(valid[t], dh_prev, dh_next)  # (B, H_out)  {#seq-pass-dh}
            dc_prev = None if dc is None else np.where(valid[t], dc_prev, dc_next)  # {#seq-pass-dc}
        dh_next, dc_next = dh_prev, dc_prev  # {#seq-carry-back}

    # The weight gradients are sums over the steps: one product (or sum) over the T*B stacked
    # rows of all steps, instead of T small products inside the loop.
    dx_proj = np.stack(dx_proj)  # (T, B, G*H)
    # the hidden projection's gradient: for RNN and LSTM the same as dx_proj, not the GRU's
    dgh = dx_proj if mode != "GRU" else np.stack(dgh)  # (T, B, G*H)
    h_prev = np.stack([step.h_prev for step in steps])  # (T, B, H_out)
    dW_hh = flatten_steps(dgh).T @ flatten_steps(h_prev)  # (G*H, H_out)  {#seq-dw-hh}
    db_hh = None if weights.b_hh is None else dgh.sum(axis=(0, 1))  # (G*H,)  {#seq-db-hh}
    dW_hr = None
    if weights.W_hr is not None:
        h_full = np.stack([step.h_full for step in steps])  # (T, B, H)
        dW_hr = flatten_steps(np.stack(dh_steps)).T @ flatten_steps(h_full)  # (P, H)  {#seq-dw-hr}
    return dx_proj, dh_next, dc_next, DirectionGrads(dW_hh, db_hh, dW_hr)
    ### END SOLUTION
