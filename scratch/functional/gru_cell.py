"""GRU cell, torch.nn.GRU's equations (chunk order r, z, n).

Torch's GRU is not the one in Cho et al. (2014) nor in most textbooks: the reset gate
multiplies the hidden state's *projection* (h_prev W_hn^T + b_hn), not h_prev itself.

    gi = x W_ih^T + b_ih               (B, 3H), chunks gi_r | gi_z | gi_n
    gh = h_prev W_hh^T + b_hh          (B, 3H), chunks gh_r | gh_z | gh_n
    r  = sigmoid(gi_r + gh_r)          reset gate        (B, H)
    z  = sigmoid(gi_z + gh_z)          update gate       (B, H)
    n  = tanh(gi_n + r * gh_n)         candidate state   (B, H)
    h  = (1 - z) * n + z * h_prev                        (B, H)

Backward, with dh = dL/dh:

    dn      = dh * (1 - z)
    dz      = dh * (h_prev - n)
    dn_pre  = dn * (1 - n**2)              gradient of gi_n + r * gh_n
    dr      = dn_pre * gh_n
    dgi     = [dr * r(1-r), dz * z(1-z), dn_pre]            (B, 3H)
    dgh     = [dr * r(1-r), dz * z(1-z), dn_pre * r]        (B, 3H)  <- r only in the n block
    dh_prev = dh * z + dgh W_hh
    db_ih   = sum of dgi,  db_hh = sum of dgh: they differ in the n block.
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
    gh_n: np.ndarray  # (B, H) h_prev W_hn^T + b_hn, what r multiplies


def gru_step_forward(gi, h_prev, W_hh, b_hh):
    """One recurrent step, given the input's projection.

    gi:     (B, 3H)  x W_ih^T + b_ih, computed by the caller
    h_prev: (B, H), W_hh: (3H, H), b_hh: (3H,) or None
    Returns h (B, H) and the cache for gru_step_backward.
    """
    H = h_prev.shape[-1]
    gh = h_prev @ W_hh.T  # (B, 3H)
    if b_hh is not None:
        gh = gh + b_hh
    r = sigmoid(gi[:, 0 * H : 1 * H] + gh[:, 0 * H : 1 * H])  # (B, H)
    z = sigmoid(gi[:, 1 * H : 2 * H] + gh[:, 1 * H : 2 * H])  # (B, H)
    gh_n = gh[:, 2 * H : 3 * H]  # (B, H)
    n = tanh(gi[:, 2 * H : 3 * H] + r * gh_n)  # (B, H)
    h = (1.0 - z) * n + z * h_prev  # (B, H)
    return h, GRUStepCache(h_prev, r, z, n, gh_n)


def gru_step_backward(dh, cache, W_hh):
    """Back through one step.

    dh: (B, H) dL/dh for the state this step produced (output and next step together)
    Returns dgi (B, 3H) (the gradient of x W_ih^T + b_ih), dgh (B, 3H) (that of
    h_prev W_hh^T + b_hh) and dh_prev (B, H).
    """
    h_prev, r, z, n, gh_n = cache
    dn = dh * (1.0 - z)  # (B, H)
    dz = dh * (h_prev - n)  # (B, H)
    dn_pre = dn * tanh_grad(n)  # (B, H)
    dr = dn_pre * gh_n  # (B, H)
    dr_pre = dr * sigmoid_grad(r)  # (B, H)
    dz_pre = dz * sigmoid_grad(z)  # (B, H)
    dgi = np.concatenate([dr_pre, dz_pre, dn_pre], axis=-1)  # (B, 3H)
    dgh = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=-1)  # (B, 3H)
    dh_prev = dh * z + dgh @ W_hh  # (B, H)
    return dgi, dgh, dh_prev


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
    gi = x @ W_ih.T  # (B, 3H)
    if b_ih is not None:
        gi = gi + b_ih
    h, step_cache = gru_step_forward(gi, h_prev, W_hh, b_hh)
    return h, GRUCellCache(x, W_ih, W_hh, b_ih is not None, step_cache)


def gru_cell_backward(dh, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H)."""
    x, W_ih, W_hh, has_bias, step_cache = cache
    dgi, dgh, dh_prev = gru_step_backward(dh, step_cache, W_hh)
    dx = dgi @ W_ih  # (B, I)
    dW_ih = dgi.T @ x  # (3H, I)
    dW_hh = dgh.T @ step_cache.h_prev  # (3H, H)
    db_ih = dgi.sum(axis=0) if has_bias else None  # (3H,)
    db_hh = dgh.sum(axis=0) if has_bias else None  # (3H,)
    return GRUCellGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)
