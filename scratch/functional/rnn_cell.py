"""Elman RNN cell, torch.nn.RNNCell's equations.

Symbols and shapes: the glossary in ``scratch.functional``. Forward:

    pre = x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh      (B, H)
    h   = act(pre),  act = tanh or relu                   (B, H)

Backward, given dh = dL/dh (B, H):

    dpre    = dh * act'(pre)       (B, H)   act' read from h: 1 - h**2 (tanh), h > 0 (relu)
    dx      = dpre @ W_ih          (B, I)
    dh_prev = dpre @ W_hh          (B, H)
    dW_ih   = dpre.T @ x           (H, I)
    dW_hh   = dpre.T @ h_prev      (H, H)
    db_ih   = db_hh = dpre.sum(axis=0)    (H,)

(x_proj = x @ W_ih.T + b_ih, so dx_proj = dpre: the step backward returns dpre.)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scratch.activations import ACTIVATIONS


class RNNStepCache(NamedTuple):
    h_prev: np.ndarray  # (B, H) state entering the step
    h: np.ndarray  # (B, H) state leaving the step, act(pre)
    nonlinearity: str  # "tanh" or "relu"


def rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity="tanh"):
    """One recurrent step, given the input's share of the pre-activation.

    x_proj: (B, H)  x @ W_ih.T + b_ih, computed by the caller
    h_prev: (B, H)
    W_hh:   (H, H)
    b_hh:   (H,) or None
    Returns h (B, H) and the cache for rnn_step_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: act comes from ACTIVATIONS; b_hh may be None.
    act, _ = ACTIVATIONS[nonlinearity]
    pre = x_proj + h_prev @ W_hh.T  # (B, H)  {#rnn-pre}
    if b_hh is not None:
        pre = pre + b_hh  # (B, H)  {#rnn-pre-bias}
    h = act(pre)  # (B, H)  {#rnn-h}
    return h, RNNStepCache(h_prev, h, nonlinearity)
    ### END SOLUTION


class RNNStepGrads(NamedTuple):
    dpre: np.ndarray  # (B, H) dL/dpre, also dL/dx_proj and, per example, dL/db_hh
    dh_prev: np.ndarray  # (B, H)


def rnn_step_backward(dh, cache, W_hh):
    """Back through one step.

    dh: (B, H) dL/dh for the state this step produced
    Returns RNNStepGrads: dpre (B, H), the gradient of the pre-activation, and dh_prev (B, H).
    """
    ### BEGIN SOLUTION
    ### HINT: the activation's derivative is read from h (ACTIVATIONS' second function).
    h_prev, h, nonlinearity = cache
    _, act_grad = ACTIVATIONS[nonlinearity]
    dpre = dh * act_grad(h)  # (B, H)  back through h = act(pre)  {#rnn-dpre}
    dh_prev = dpre @ W_hh  # (B, H)  back through pre = ... + h_prev @ W_hh.T  {#rnn-dh-prev}
    return RNNStepGrads(dpre, dh_prev)
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
    """The whole cell: h = act(x @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh).

    x: (B, I), h_prev: (B, H), W_ih: (H, I), W_hh: (H, H), b_ih, b_hh: (H,) or None.
    Returns h (B, H) and the cache for rnn_cell_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: x_proj, then one rnn_step_forward; b_ih may be None.
    x_proj = x @ W_ih.T  # (B, H)  {#rnn-cell-x-proj}
    if b_ih is not None:
        x_proj = x_proj + b_ih  # (B, H)  {#rnn-cell-x-proj-bias}
    h, step_cache = rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity)
    return h, RNNCellCache(x, W_ih, W_hh, b_ih is not None, step_cache)
    ### END SOLUTION


def rnn_cell_backward(dh, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H): the module docstring's equations."""
    ### BEGIN SOLUTION
    ### HINT: rnn_step_backward gives dpre; the rest are products of dpre with the cache.
    x, W_ih, W_hh, has_bias, step_cache = cache
    dpre, dh_prev = rnn_step_backward(dh, step_cache, W_hh)
    dx = dpre @ W_ih  # (B, I)  back through x_proj = x @ W_ih.T  {#rnn-cell-dx}
    dW_ih = dpre.T @ x  # (H, I)  {#rnn-cell-dw-ih}
    dW_hh = dpre.T @ step_cache.h_prev  # (H, H)  {#rnn-cell-dw-hh}
    db_ih = dpre.sum(axis=0) if has_bias else None  # (H,)  {#rnn-cell-db-ih}
    db_hh = dpre.sum(axis=0) if has_bias else None  # (H,)  {#rnn-cell-db-hh}
    return RNNCellGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)
    ### END SOLUTION
