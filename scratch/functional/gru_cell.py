"""GRU cell, torch.nn.GRU's equations (chunk order r, z, n).

Torch's GRU is not the one in Cho et al. (2014) nor in most textbooks: the reset gate
multiplies the hidden state's *projection* (h_prev @ W_hn.T + b_hn), not h_prev itself.

Symbols and shapes: the glossary in ``scratch.functional``. Forward:

    x_proj = x @ W_ih.T + b_ih         (B, 3H), split x_proj_r | x_proj_z | x_proj_n
    gh = h_prev @ W_hh.T + b_hh        (B, 3H), split gh_r | gh_z | gh_n
    r  = sigmoid(x_proj_r + gh_r)      reset gate        (B, H)
    z  = sigmoid(x_proj_z + gh_z)      update gate       (B, H)
    n  = tanh(x_proj_n + r * gh_n)     candidate state   (B, H)
    h  = (1 - z) * n + z * h_prev                        (B, H)

Backward, given dh = dL/dh (B, H), from the last forward line up:

    dn      = dh * (1 - z)                               (B, H)
    dz      = dh * (h_prev - n)                          (B, H)
    dn_pre  = dn * (1 - n**2)      gradient of x_proj_n + r * gh_n    (B, H)
    dr      = dn_pre * gh_n                              (B, H)
    dgh_n   = dn_pre * r                                 (B, H)
    dz_pre  = dz * z * (1 - z)     gradient of x_proj_z + gh_z        (B, H)
    dr_pre  = dr * r * (1 - r)     gradient of x_proj_r + gh_r        (B, H)
    dx_proj = [dr_pre | dz_pre | dn_pre]                 (B, 3H)
    dgh     = [dr_pre | dz_pre | dgh_n]                  (B, 3H)  r only in the n block
    dh_prev = dh * z + dgh @ W_hh                        (B, H)
    dx      = dx_proj @ W_ih                             (B, I)
    dW_ih   = dx_proj.T @ x                              (3H, I)
    dW_hh   = dgh.T @ h_prev                             (3H, H)
    db_ih   = dx_proj.sum(axis=0), db_hh = dgh.sum(axis=0)   (3H,): they differ in the n block
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scratch.activations import sigmoid, sigmoid_grad, tanh, tanh_grad


class GRUStepCache(NamedTuple):
    h_prev: np.ndarray  # (B, H) state entering the step
    r: np.ndarray  # (B, H) reset gate
    z: np.ndarray  # (B, H) update gate
    n: np.ndarray  # (B, H) candidate state
    gh_n: np.ndarray  # (B, H) h_prev @ W_hn.T + b_hn, what r multiplies


def gru_step_forward(x_proj, h_prev, W_hh, b_hh):
    """One recurrent step, given the input's projection.

    x_proj: (B, 3H)  x @ W_ih.T + b_ih, computed by the caller
    h_prev: (B, H), W_hh: (3H, H), b_hh: (3H,) or None
    Returns h (B, H) and the cache for gru_step_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: r multiplies gh_n, the whole projection of h_prev; b_hh may be None.
    gh = h_prev @ W_hh.T  # (B, 3H)  {#gru-gh}
    if b_hh is not None:
        gh = gh + b_hh  # (B, 3H)  {#gru-gh-bias}
    x_proj_r, x_proj_z, x_proj_n = np.split(x_proj, 3, axis=-1)  # each (B, H)  {#gru-split-x-proj}
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=-1)  # each (B, H)  {#gru-split-gh}
    r = sigmoid(x_proj_r + gh_r)  # (B, H)  reset gate  {#gru-r}
    z = sigmoid(x_proj_z + gh_z)  # (B, H)  update gate  {#gru-z}
    n = tanh(x_proj_n + r * gh_n)  # (B, H)  candidate state  {#gru-n}
    h = (1.0 - z) * n + z * h_prev  # (B, H)  {#gru-h}
    return h, GRUStepCache(h_prev, r, z, n, gh_n)
    ### END SOLUTION


class GRUStepGrads(NamedTuple):
    dx_proj: np.ndarray  # (B, 3H) dL/dx_proj
    dgh: np.ndarray  # (B, 3H) dL/dgh, gh = h_prev @ W_hh.T + b_hh; differs in the n block
    dh_prev: np.ndarray  # (B, H)


def gru_step_backward(dh, cache, W_hh):
    """Back through one step.

    dh: (B, H) dL/dh for the state this step produced (its output and the next step)
    Returns GRUStepGrads: dx_proj (B, 3H), dgh (B, 3H) (the gradient of
    h_prev @ W_hh.T + b_hh) and dh_prev (B, H).
    """
    ### BEGIN SOLUTION
    ### HINT: the module docstring's backward, line by line; h_prev reaches h two ways.
    h_prev, r, z, n, gh_n = cache
    dn = dh * (1.0 - z)  # (B, H)  back through h = (1 - z) * n + z * h_prev, to n  {#gru-dn}
    dz = dh * (h_prev - n)  # (B, H)  ... to z  {#gru-dz}
    dn_pre = dn * tanh_grad(n)  # (B, H)  back through n = tanh(x_proj_n + r * gh_n)  {#gru-dn-pre}
    dr = dn_pre * gh_n  # (B, H)  ... to r  {#gru-dr}
    dgh_n = dn_pre * r  # (B, H)  ... to gh_n  {#gru-dgh-n}
    dz_pre = dz * sigmoid_grad(z)  # (B, H)  back through z's sigmoid  {#gru-dz-pre}
    dr_pre = dr * sigmoid_grad(r)  # (B, H)  back through r's sigmoid  {#gru-dr-pre}
    # back through the splits: the blocks joined again in the order r | z | n
    dx_proj = np.hstack([dr_pre, dz_pre, dn_pre])  # (B, 3H)  {#gru-dx-proj}
    dgh = np.hstack([dr_pre, dz_pre, dgh_n])  # (B, 3H)  {#gru-dgh}
    dh_prev = dh * z + dgh @ W_hh  # (B, H)  direct path, and back through gh  {#gru-dh-prev}
    return GRUStepGrads(dx_proj, dgh, dh_prev)
    ### END SOLUTION


class GRUCellCache(NamedTuple):
    x: np.ndarray  # (B, I)
    W_ih: np.ndarray  # (3H, I)
    W_hh: np.ndarray  # (3H, H)
    has_bias: bool
    step: GRUStepCache


class GRUCellGrads(NamedTuple):
    dx: np.ndarray  # (B, I)
    dh_prev: np.ndarray  # (B, H)
    dW_ih: np.ndarray  # (3H, I)
    dW_hh: np.ndarray  # (3H, H)
    db_ih: np.ndarray | None  # (3H,)
    db_hh: np.ndarray | None  # (3H,)


def gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih=None, b_hh=None):
    """The whole cell. x: (B, I), h_prev: (B, H). Returns h (B, H) and the cache."""
    ### BEGIN SOLUTION
    ### HINT: x_proj, then one gru_step_forward; b_ih may be None.
    x_proj = x @ W_ih.T  # (B, 3H)  {#gru-cell-x-proj}
    if b_ih is not None:
        x_proj = x_proj + b_ih  # (B, 3H)  {#gru-cell-x-proj-bias}
    h, step_cache = gru_step_forward(x_proj, h_prev, W_hh, b_hh)
    return h, GRUCellCache(x, W_ih, W_hh, b_ih is not None, step_cache)
    ### END SOLUTION


def gru_cell_backward(dh, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H): the module docstring's equations."""
    ### BEGIN SOLUTION
    ### HINT: gru_step_backward gives dx_proj and dgh; the biases' gradients differ.
    x, W_ih, W_hh, has_bias, step_cache = cache
    dx_proj, dgh, dh_prev = gru_step_backward(dh, step_cache, W_hh)
    dx = dx_proj @ W_ih  # (B, I)  back through x_proj = x @ W_ih.T  {#gru-cell-dx}
    dW_ih = dx_proj.T @ x  # (3H, I)  {#gru-cell-dw-ih}
    dW_hh = dgh.T @ step_cache.h_prev  # (3H, H)  {#gru-cell-dw-hh}
    db_ih = dx_proj.sum(axis=0) if has_bias else None  # (3H,)  {#gru-cell-db-ih}
    db_hh = dgh.sum(axis=0) if has_bias else None  # (3H,)  {#gru-cell-db-hh}
    return GRUCellGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)
    ### END SOLUTION
