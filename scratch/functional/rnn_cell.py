"""Elman RNN cell, torch.nn.RNNCell's equations.

    pre = x W_ih^T + b_ih + h_prev W_hh^T + b_hh        (B, H)
    h   = act(pre),  act = tanh or relu                 (B, H)

Backward, with dh = dL/dh:

    dpre    = dh * act'(pre)        (written through h: 1 - h**2 for tanh, h > 0 for relu)
    dx      = dpre W_ih             (B, I)
    dh_prev = dpre W_hh             (B, H)
    dW_ih   = dpre^T x              (H, I)
    dW_hh   = dpre^T h_prev         (H, H)
    db_ih   = db_hh = sum over the batch of dpre     (H,)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scratch.activations import ACTIVATIONS
from scratch.functional.products import hidden_product


class RNNStepCache(NamedTuple):
    h_prev: np.ndarray  # (B, H) state entering the step
    h: np.ndarray  # (B, H) state leaving the step, act(pre)
    nonlinearity: str  # "tanh" or "relu"


def rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity="tanh", *, out=None):
    """One recurrent step, given the input's share of the pre-activation.

    x_proj: (B, H)  x W_ih^T + b_ih, computed by the caller
    h_prev: (B, H)
    W_hh:   (H, H)
    b_hh:   (H,) or None
    out:    optional (B, H) array to write h into (the sequence loop passes its slot for
            this step's state); a new array when None
    Returns h (B, H) and the cache for rnn_step_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: pre = x_proj + h_prev W_hh^T (+ b_hh); h = act(pre), act from ACTIVATIONS;
    ### HINT: h written into out when one is given. Return h, RNNStepCache(h_prev, h, nonlinearity).
    act, _ = ACTIVATIONS[nonlinearity]
    pre = x_proj + hidden_product(h_prev, W_hh)  # (B, H)  x_proj + h_prev W_hh^T
    if b_hh is not None:
        pre += b_hh
    h = act(pre, out=out)  # (B, H)
    return h, RNNStepCache(h_prev, h, nonlinearity)
    ### END SOLUTION


def rnn_step_backward(dh, cache, W_hh, *, out=None):
    """Back through one step.

    dh:  (B, H) dL/dh for the state this step produced
    out: optional (B, H) array to write dpre into; a new array when None
    Returns dpre (B, H), the gradient of the pre-activation (which is also the gradient of
    x_proj and of b_hh per example), and dh_prev (B, H).
    """
    ### BEGIN SOLUTION
    ### HINT: unpack the cache; dpre = dh * act'(pre), from h by act_grad (into out when given);
    ### HINT: dh_prev = dpre W_hh. Return (dpre, dh_prev).
    h_prev, h, nonlinearity = cache
    _, act_grad = ACTIVATIONS[nonlinearity]
    dpre = np.multiply(dh, act_grad(h), out=out)  # (B, H)  dh * act'(pre)
    dh_prev = dpre @ W_hh  # (B, H)
    return dpre, dh_prev
    ### END SOLUTION


class RNNCellCache(NamedTuple):
    x: np.ndarray  # (B, I)
    W_ih: np.ndarray  # (H, I)
    W_hh: np.ndarray  # (H, H)
    has_bias: bool
    step: RNNStepCache


class RNNCellGrads(NamedTuple):
    dx: np.ndarray  # (B, I)
    dh_prev: np.ndarray  # (B, H)
    dW_ih: np.ndarray  # (H, I)
    dW_hh: np.ndarray  # (H, H)
    db_ih: np.ndarray | None  # (H,)
    db_hh: np.ndarray | None  # (H,)


def rnn_cell_forward(x, h_prev, W_ih, W_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """The whole cell: h = act(x W_ih^T + b_ih + h_prev W_hh^T + b_hh).

    x: (B, I), h_prev: (B, H), W_ih: (H, I), W_hh: (H, H), b_ih, b_hh: (H,) or None.
    Returns h (B, H) and the cache for rnn_cell_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: x_proj = x W_ih^T (+ b_ih), then one rnn_step_forward. Return h, an RNNCellCache.
    x_proj = x @ W_ih.T  # (B, H)
    if b_ih is not None:
        x_proj = x_proj + b_ih
    h, step_cache = rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity)
    return h, RNNCellCache(x, W_ih, W_hh, b_ih is not None, step_cache)
    ### END SOLUTION


def rnn_cell_backward(dh, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H)."""
    ### BEGIN SOLUTION
    ### HINT: rnn_step_backward gives dpre; dx, dW_ih, dW_hh: products of dpre with W_ih, x, h_prev;
    ### HINT: each bias gradient sums dpre over the batch (the two are equal). Return RNNCellGrads.
    x, W_ih, W_hh, has_bias, step_cache = cache
    dpre, dh_prev = rnn_step_backward(dh, step_cache, W_hh)
    dx = dpre @ W_ih  # (B, I)
    dW_ih = dpre.T @ x  # (H, I)
    dW_hh = dpre.T @ step_cache.h_prev  # (H, H)
    db = dpre.sum(axis=0) if has_bias else None  # (H,)
    return RNNCellGrads(dx, dh_prev, dW_ih, dW_hh, db, None if db is None else db.copy())
    ### END SOLUTION
