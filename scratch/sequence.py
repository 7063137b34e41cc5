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

Where things live. The arrays of a direction are allocated once (``new_storage``), in time
order, and each step writes into its slots, so that a step allocates nothing it keeps:
* ``states`` (T + 1, B, H_out): for the forward direction states[0] is h0 and step t turns
  states[t] into states[t + 1]; for the reverse direction states[T] is h0 and step t turns
  states[t + 1] into states[t]. The output and the stacked h_prev of all steps (for dW_hh) are
  two views of this one array.
* ``gates`` (T, G, B, H): the gate values of each step (LSTM i, f, g, o; GRU r, z, n), one
  contiguous (B, H) block per gate;
* (T, B, H) arrays of what else a step's cache keeps: for the LSTM c and tanh(c) (and
  o * tanh(c) with a projection), for the GRU h_prev W_hn^T + b_hn.
The backward pass writes each step's pre-activation gradient into that step's row of x_proj's
array, which is no longer needed by then: it becomes dx_proj (T, B, G*H), from which the
weight gradients are formed.

Variable lengths are a mask ``valid`` (T, B, 1): where a step is not valid for a sequence
(t >= its length) its state passes through unchanged and its output is zero. The reverse
direction thus starts at each sequence's own last valid step, as torch's packed sequences do.
Backward, a step that did not happen passes dL/dh straight through and contributes nothing.

What the backward pass keeps per step, each (B, ...): the LSTM i, f, g, o, c, tanh(c) (6H)
and h (H_out), with a projection o * tanh(c) too (H); the GRU r, z, n, h_prev W_hn^T + b_hn
(4H) and h; the RNN h. The step caches are views of these arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scratch.functional.gru_cell import GRUCacheOut, gru_step_backward, gru_step_forward
from scratch.functional.lstm_cell import LSTMCacheOut, lstm_step_backward, lstm_step_forward
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
    h_prev: np.ndarray  # (T, B, H_out) the state entering each step t (a view of the states)
    work: np.ndarray  # (T, B, G*H) x_proj's array, which the backward pass reuses for dx_proj
    storage: Storage  # the arrays the steps wrote into


class DirectionGrads(NamedTuple):
    dW_hh: np.ndarray
    db_hh: np.ndarray | None
    dW_hr: np.ndarray | None


class Storage(NamedTuple):
    """The arrays one direction writes into, allocated once, in time order."""

    states: np.ndarray  # (T + 1, B, H_out) h0 and the state after each step
    cells: np.ndarray | None  # (T, B, H) LSTM: the cell state of each step
    gates: np.ndarray | None  # (T, G, B, H) the gates of each step, one (B, H) block per gate
    tanh_cells: np.ndarray | None  # (T, B, H) LSTM: tanh(c) of each step
    h_full: np.ndarray | None  # (T, B, H) LSTM with a projection: o * tanh(c)
    gh_n: np.ndarray | None  # (T, B, H) GRU: h_prev W_hn^T + b_hn of each step


def new_storage(mode, T, B, H, H_out, dtype, projected=False) -> Storage:
    """New arrays for one direction of T steps (H_out = P for an LSTM with a projection)."""
    states = np.empty((T + 1, B, H_out), dtype=dtype)
    if mode == "LSTM":
        return Storage(states, np.empty((T, B, H), dtype=dtype),
                       np.empty((T, 4, B, H), dtype=dtype), np.empty((T, B, H), dtype=dtype),
                       np.empty((T, B, H), dtype=dtype) if projected else None, None)
    if mode == "GRU":
        return Storage(states, None, np.empty((T, 3, B, H), dtype=dtype), None, None,
                       np.empty((T, B, H), dtype=dtype))
    return Storage(states, None, None, None, None, None)


def _step_forward(mode, x_proj_t, h_prev, c_prev, store, t, new, weights):
    """Step t of the cell named by mode; h goes into slot new of the states, what the cache
    keeps into the storage's slots for step t. Returns (c, cache); c is None but for LSTM."""
    h = store.states[new]
    if mode == "LSTM":
        i, f, g, o = store.gates[t]
        h_full = None if store.h_full is None else store.h_full[t]
        keep = LSTMCacheOut(i, f, g, o, store.cells[t], store.tanh_cells[t], h_full)
        _, c, cache = lstm_step_forward(x_proj_t, h_prev, c_prev, weights.W_hh, weights.b_hh,
                                        weights.W_hr, out=h, cache_out=keep)
        return c, cache
    if mode == "GRU":
        r, z, n = store.gates[t]
        keep = GRUCacheOut(r, z, n, store.gh_n[t])
        _, cache = gru_step_forward(x_proj_t, h_prev, weights.W_hh, weights.b_hh, out=h,
                                    cache_out=keep)
        return None, cache
    nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
    _, cache = rnn_step_forward(x_proj_t, h_prev, weights.W_hh, weights.b_hh, nonlinearity,
                                out=h)
    return None, cache


def _step_backward(mode, dh, dc, cache, weights, dx_proj_t, dgh_t):
    """Back through one step; the gradient of the input projection x W_ih^T + b_ih is written
    into dx_proj_t and that of the hidden projection h_prev W_hh^T + b_hh into dgh_t (the same
    array but for the GRU). Returns (dh_prev, dc_prev)."""
    if mode == "LSTM":
        _, dh_prev, dc_prev = lstm_step_backward(dh, dc, cache, weights.W_hh, weights.W_hr,
                                                 out=dx_proj_t)
        return dh_prev, dc_prev
    if mode == "GRU":
        _, _, dh_prev = gru_step_backward(dh, cache, weights.W_hh, out=(dx_proj_t, dgh_t))
        return dh_prev, None
    _, dh_prev = rnn_step_backward(dh, cache, weights.W_hh, out=dx_proj_t)
    return dh_prev, None


def direction_forward(mode, x_proj, h0, c0, weights, valid=None, reverse=False, *,
                      storage=None):
    """Run one direction of one layer over the whole sequence.

    x_proj:  (T, B, G*H)  x_t W_ih^T + b_ih for every step (the cache keeps the array, and the
             backward pass overwrites it with dx_proj)
    h0:      (B, H_out),  c0: (B, H) for LSTM, else None
    valid:   (T, B, 1) bool or None
    storage: optional Storage (see new_storage) for the steps to write into; new when None
    Returns output (T, B, H_out), h_n (B, H_out), c_n (B, H) or None, and the cache.
    Without ``valid`` the output is a view of the states the cache keeps: the caller must not
    write into it.
    """
    ### BEGIN SOLUTION
    ### HINT: the states array holds h0 and then each step's h (_step_forward writes it there); walk
    ### HINT: t forward (backward for reverse) carrying c; with valid, a step past a sequence's
    ### HINT: length keeps its state. Return the output (zero where not valid), h_n, c_n, cache.
    T, B = x_proj.shape[:2]
    H = h0.shape[-1] if c0 is None else c0.shape[-1]
    store = storage if storage is not None else new_storage(
        mode, T, B, H, h0.shape[-1], x_proj.dtype, weights.W_hr is not None)
    store.states[T if reverse else 0] = h0
    steps: list = [None] * T
    c = c0
    for t in reversed(range(T)) if reverse else range(T):
        prev, new = (t + 1, t) if reverse else (t, t + 1)  # slots of h_prev and of h
        c_new, steps[t] = _step_forward(mode, x_proj[t], store.states[prev], c, store, t, new,
                                        weights)
        if valid is None:
            c = c_new
        else:  # a sequence whose length is past keeps its state as it was
            np.copyto(store.states[new], store.states[prev], where=~valid[t])
            c = None if c is None else np.where(valid[t], c_new, c)

    last = 0 if reverse else T  # the slot of h_n
    h_prev = store.states[1:] if reverse else store.states[:T]  # (T, B, H_out), time order
    output = store.states[:T] if reverse else store.states[1:]  # (T, B, H_out)
    if valid is not None:
        output = np.where(valid, output, 0.0)  # zero at the steps past a sequence's length
    cache = DirectionCache(mode, steps, valid, reverse, h_prev, x_proj, store)
    return output, store.states[last], c, cache
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
    ### HINT: walk the steps in the opposite order carrying dh (and dc), plus doutput[t] at step t;
    ### HINT: _step_backward writes dx_proj[t] (and dgh[t]); with valid, a step that did not happen
    ### HINT: passes dh (and dc) straight through. dW_hh, db_hh, dW_hr: one product after the loop.
    mode, steps, valid, reverse, h_prev, dx_proj, store = cache  # dx_proj: x_proj's array
    if weights.W_hh.dtype == np.float64:
        # every step multiplies dgates by W_hh; OpenBLAS's float64 product runs 5-25 % faster
        # on a column-major copy of W_hh (made once here); in float32 it does not
        weights = weights._replace(W_hh=np.asfortranarray(weights.W_hh))
    T, B = doutput.shape[:2]
    GH = weights.W_hh.shape[0]
    dgh = dx_proj if mode != "GRU" else np.empty_like(dx_proj)
    # dL/dh of each step that happened, for dW_hr (LSTM with a projection only)
    dh_steps = None if weights.W_hr is None else np.empty_like(doutput)
    dh, dc = dh_n, dc_n
    for t in range(T) if reverse else reversed(range(T)):
        dh_t = dh + doutput[t]  # from the next step and from this step's output
        dc_t = dc
        if valid is not None:  # a step that did not happen gets no gradient
            dh_t *= valid[t]
            dc_t = None if dc is None else dc * valid[t]
        dh_prev, dc_prev = _step_backward(mode, dh_t, dc_t, steps[t], weights, dx_proj[t],
                                          dgh[t])
        if dh_steps is not None:
            dh_steps[t] = dh_t
        if valid is not None:  # ...and passes dL/dh (dL/dc) of its state straight through
            dh_prev += dh * ~valid[t]
            dc_prev = None if dc is None else dc_prev + dc * ~valid[t]
        dh, dc = dh_prev, dc_prev

    H_out = h_prev.shape[-1]
    dW_hh = dgh.reshape(T * B, GH).T @ h_prev.reshape(T * B, H_out)  # (G*H, H_out)
    db_hh = None if weights.b_hh is None else dgh.sum(axis=(0, 1))  # (G*H,)
    dW_hr = None
    if dh_steps is not None:
        H = store.h_full.shape[-1]
        dW_hr = dh_steps.reshape(T * B, H_out).T @ store.h_full.reshape(T * B, H)  # (P, H)
    return dx_proj, dh, dc, DirectionGrads(dW_hh, db_hh, dW_hr)
    ### END SOLUTION
