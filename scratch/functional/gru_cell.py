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
from scratch.functional.products import hidden_product


class GRUStepCache(NamedTuple):
    h_prev: np.ndarray  # (B, H) state entering the step
    r: np.ndarray  # (B, H) reset gate
    z: np.ndarray  # (B, H) update gate
    n: np.ndarray  # (B, H) candidate state
    gh_n: np.ndarray  # (B, H) h_prev W_hn^T + b_hn, what r multiplies


class GRUCacheOut(NamedTuple):
    """Arrays for gru_step_forward to write what its cache keeps into, each (B, H). The
    sequence loop passes its slots for the step, so that a step allocates nothing it keeps."""

    r: np.ndarray | None
    z: np.ndarray | None
    n: np.ndarray | None
    gh_n: np.ndarray | None


NEW_ARRAYS = GRUCacheOut(None, None, None, None)


def gru_step_forward(gi, h_prev, W_hh, b_hh, *, out=None, cache_out=None):
    """One recurrent step, given the input's projection.

    gi:        (B, 3H)  x W_ih^T + b_ih, computed by the caller
    h_prev:    (B, H), W_hh: (3H, H), b_hh: (3H,) or None
    out:       optional (B, H) array to write h into; a new array when None
    cache_out: optional GRUCacheOut, the arrays to write the cached values into; new arrays
               when None
    Returns h (B, H) and the cache for gru_step_backward.
    """
    ### BEGIN SOLUTION
    ### HINT: gh = h_prev W_hh^T (+ b_hh); r and z from gi + gh; n = tanh(gi_n + r * gh_n);
    ### HINT: h = (1 - z) * n + z * h_prev, into out when given (r, z, n, gh_n into cache_out's
    ### HINT: arrays when given). Return h and GRUStepCache(h_prev, r, z, n, gh_n).
    H = h_prev.shape[-1]
    keep = NEW_ARRAYS if cache_out is None else cache_out
    gh = hidden_product(h_prev, W_hh)  # (B, 3H)  h_prev W_hh^T
    if b_hh is not None:
        gh += b_hh
    r = sigmoid(gi[:, 0 * H : 1 * H] + gh[:, 0 * H : 1 * H], out=keep.r)  # (B, H)
    z = sigmoid(gi[:, 1 * H : 2 * H] + gh[:, 1 * H : 2 * H], out=keep.z)  # (B, H)
    gh_n = np.positive(gh[:, 2 * H : 3 * H], out=keep.gh_n)  # (B, H), a copy (+x) to keep
    n = tanh(gi[:, 2 * H : 3 * H] + r * gh_n, out=keep.n)  # (B, H)
    h = np.add((1.0 - z) * n, z * h_prev, out=out)  # (B, H)  (1 - z) * n + z * h_prev
    return h, GRUStepCache(h_prev, r, z, n, gh_n)
    ### END SOLUTION


def gru_step_backward(dh, cache, W_hh, *, out=None):
    """Back through one step.

    dh:  (B, H) dL/dh for the state this step produced (output and next step together)
    out: optional pair of (B, 3H) arrays to write dgi and dgh into; new arrays when None
    Returns dgi (B, 3H) (the gradient of x W_ih^T + b_ih), dgh (B, 3H) (that of
    h_prev W_hh^T + b_hh) and dh_prev (B, H).
    """
    ### BEGIN SOLUTION
    ### HINT: dn, dz, dn_pre, dr as in the module docstring; dgi and dgh differ only in the n block,
    ### HINT: where dgh carries r; dh_prev = dh * z + dgh W_hh. With out, write dgi and dgh into it.
    h_prev, r, z, n, gh_n = cache
    dn = dh * (1.0 - z)  # (B, H)
    dz = dh * (h_prev - n)  # (B, H)
    dn_pre = dn * tanh_grad(n)  # (B, H)
    dr = dn_pre * gh_n  # (B, H)
    dr_pre = dr * sigmoid_grad(r)  # (B, H)
    dz_pre = dz * sigmoid_grad(z)  # (B, H)
    dgi_out, dgh_out = (None, None) if out is None else out
    dgi = np.concatenate([dr_pre, dz_pre, dn_pre], axis=-1, out=dgi_out)  # (B, 3H)
    dgh = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=-1, out=dgh_out)  # (B, 3H)
    dh_prev = dh * z + dgh @ W_hh  # (B, H)
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
    ### HINT: gi = x W_ih^T (+ b_ih), then one gru_step_forward. Return h and a GRUCellCache.
    gi = x @ W_ih.T  # (B, 3H)
    if b_ih is not None:
        gi = gi + b_ih
    h, step_cache = gru_step_forward(gi, h_prev, W_hh, b_hh)
    return h, GRUCellCache(x, W_ih, W_hh, b_ih is not None, step_cache)
    ### END SOLUTION


def gru_cell_backward(dh, cache):
    """Gradients of the whole cell, given dh = dL/dh (B, H)."""
    ### BEGIN SOLUTION
    ### HINT: gru_step_backward gives dgi and dgh; dx and dW_ih come from dgi, dW_hh from dgh;
    ### HINT: db_ih sums dgi and db_hh sums dgh over the batch. Return GRUCellGrads.
    x, W_ih, W_hh, has_bias, step_cache = cache
    dgi, dgh, dh_prev = gru_step_backward(dh, step_cache, W_hh)
    dx = dgi @ W_ih  # (B, I)
    dW_ih = dgi.T @ x  # (3H, I)
    dW_hh = dgh.T @ step_cache.h_prev  # (3H, H)
    db_ih = dgi.sum(axis=0) if has_bias else None  # (3H,)
    db_hh = dgh.sum(axis=0) if has_bias else None  # (3H,)
    return GRUCellGrads(dx, dh_prev, dW_ih, dW_hh, db_ih, db_hh)
    ### END SOLUTION
