"""GRU cell, torch.nn.GRU's equations (chunk order r, z, n).

Torch's GRU is not the one in Cho et al. (2014) nor in most textbooks: the reset gate
multiplies the hidden state's *projection* (h_prev @ W_hn.T + b_hn), not h_prev itself.

Forward (x is (B, I), h_prev is (B, H)):

    gi = x @ W_ih.T + b_ih             (B, 3H), split gi_r | gi_z | gi_n
    gh = h_prev @ W_hh.T + b_hh        (B, 3H), split gh_r | gh_z | gh_n
    r  = sigmoid(gi_r + gh_r)          reset gate        (B, H)
    z  = sigmoid(gi_z + gh_z)          update gate       (B, H)
    n  = tanh(gi_n + r * gh_n)         candidate state   (B, H)
    h  = (1 - z) * n + z * h_prev                        (B, H)

Backward, given dh = dL/dh (B, H), from the last forward line up:

    dn      = dh * (1 - z)                               (B, H)
    dz      = dh * (h_prev - n)                          (B, H)
    dn_pre  = dn * (1 - n**2)      gradient of gi_n + r * gh_n        (B, H)
    dr      = dn_pre * gh_n                              (B, H)
    dgh_n   = dn_pre * r                                 (B, H)
    dz_pre  = dz * z * (1 - z)     gradient of gi_z + gh_z            (B, H)
    dr_pre  = dr * r * (1 - r)     gradient of gi_r + gh_r            (B, H)
    dgi     = [dr_pre | dz_pre | dn_pre]                 (B, 3H)
    dgh     = [dr_pre | dz_pre | dgh_n]                  (B, 3H)  r only in the n block
    dh_prev = dh * z + dgh @ W_hh                        (B, H)
    dx      = dgi @ W_ih                                 (B, I)
    dW_ih   = dgi.T @ x                                  (3H, I)
    dW_hh   = dgh.T @ h_prev                             (3H, H)
    db_ih   = dgi.sum(axis=0),  db_hh = dgh.sum(axis=0)  (3H,): they differ in the n block
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


def gru_step_forward(gi, h_prev, W_hh, b_hh):
    """One recurrent step, given the input's projection.

    gi:     (B, 3H)  x @ W_ih.T + b_ih, computed by the caller
    h_prev: (B, H), W_hh: (3H, H), b_hh: (3H,) or None
    Returns h (B, H) and the cache for gru_step_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: gh = h_prev @ W_hh.T + b_hh (no b_hh when it is None); split gi and gh in r | z | n;
    ### HINT: r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n);
    ### HINT: h = (1 - z) * n + z * h_prev. Return h and GRUStepCache(h_prev, r, z, n, gh_n).
    gh = h_prev @ W_hh.T  # (B, 3H)  {#gru-gh}
    if b_hh is not None:
        gh = gh + b_hh  # (B, 3H)  {#gru-gh-bias}
    gi_r, gi_z, gi_n = np.split(gi, 3, axis=-1)  # each (B, H)  {#gru-split-gi}
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=-1)  # each (B, H)  {#gru-split-gh}
    r = sigmoid(gi_r + gh_r)  # (B, H)  reset gate  {#gru-r}
    z = sigmoid(gi_z + gh_z)  # (B, H)  update gate  {#gru-z}
    n = tanh(gi_n + r * gh_n)  # (B, H)  candidate state  {#gru-n}
    h = (1.0 - z) * n + z * h_prev  # (B, H)  {#gru-h}
    return h, GRUStepCache(h_prev, r, z, n, gh_n)
    ### END SOLUTION


def gru_step_backward(dh, cache, W_hh):
    """Back through one step.

    dh: (B, H) dL/dh for the state this step produced (its output and the next step)
    Returns dgi (B, 3H) (the gradient of x @ W_ih.T + b_ih), dgh (B, 3H) (that of
    h_prev @ W_hh.T + b_hh) and dh_prev (B, H).
    """
    ### BEGIN SOLUTION
    ### HINT: mirror the forward from its last line up: dn, dz, dn_pre, dr, dgh_n, dz_pre, dr_pre
    ### HINT: as in the module docstring; dgi and dgh join them in the order r | z | n and differ
    ### HINT: in the n block only; dh_prev = dh * z + dgh @ W_hh. Return (dgi, dgh, dh_prev).
    h_prev, r, z, n, gh_n = cache
    dn = dh * (1.0 - z)  # (B, H)  back through h = (1 - z) * n + z * h_prev, to n  {#gru-dn}
    dz = dh * (h_prev - n)  # (B, H)  ... to z  {#gru-dz}
    dn_pre = dn * tanh_grad(n)  # (B, H)  back through n = tanh(gi_n + r * gh_n)  {#gru-dn-pre}
    dr = dn_pre * gh_n  # (B, H)  ... to r  {#gru-dr}
    dgh_n = dn_pre * r  # (B, H)  ... to gh_n  {#gru-dgh-n}
    dz_pre = dz * sigmoid_grad(z)  # (B, H)  back through z = sigmoid(gi_z + gh_z)  {#gru-dz-pre}
    dr_pre = dr * sigmoid_grad(r)  # (B, H)  back through r = sigmoid(gi_r + gh_r)  {#gru-dr-pre}
    # back through the splits: the blocks joined again in the order r | z | n
    dgi = np.hstack([dr_pre, dz_pre, dn_pre])  # (B, 3H)  {#gru-dgi}
    dgh = np.hstack([dr_pre, dz_pre, dgh_n])  # (B, 3H)  {#gru-dgh}
    dh_prev = dh * z + dgh @ W_hh  # (B, H)  direct path, and back through gh  {#gru-dh-prev}
    return dgi, dgh, dh_prev
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
    ### HINT: gi = x @ W_ih.T + b_ih (no b_ih when it is None), then one gru_step_forward.
    ### HINT: Return h and GRUCellCache(x, W_ih, W_hh, has_bias, step_cache).
    gi = x @ W_ih.T  # (B, 3H)  {#gru-cell-gi}
    if b_ih is not None:
        gi = gi + b_ih  # (B, 3H)  {#gru-cell-gi-bias}
    h, step_cache = gru_step_forward(gi, h_prev, W_hh, b_hh)
    return h, GRUCellCache(x, W_ih, W_hh, b_ih is not None, step_cache)
    ### END SOLUTION


def gru_cell_backward(dh, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H): the module docstring's equations."""
    ### BEGIN SOLUTION
    ### HINT: gru_step_backward gives dgi, dgh, dh_prev; dx = dgi @ W_ih, dW_ih = dgi.T @ x,
    ### HINT: dW_hh = dgh.T @ h_prev; db_ih sums dgi and db_hh sums dgh over the batch (None
    ### HINT: without biases). Return GRUCellGrads.
    x, W_ih, W_hh, has_bias, step_cache = cache
    dgi, dgh, dh_prev = gru_step_backward(dh, step_cache, W_hh)
    dx = dgi @ W_ih  # (B, I)  back through gi = x @ W_ih.T  {#gru-cell-dx}
    dW_ih = dgi.T @ x  # (3H, I)  {#gru-cell-dw-ih}
    dW_hh = dgh.T @ step_cache.h_prev  # (3H, H)  {#gru-cell-dw-hh}
    db_ih = dgi.sum(axis=0) if has_bias else None  # (3H,)  {#gru-cell-db-ih}
    db_hh = dgh.sum(axis=0) if has_bias else None  # (3H,)  {#gru-cell-db-hh}
    return GRUCellGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)
    ### END SOLUTION
