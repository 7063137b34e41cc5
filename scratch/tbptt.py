"""Training steps, and truncated back-propagation through time (TBPTT) over long sequences.

A sequence too long to back-propagate through at once is cut into chunks along time. The
recurrent state is carried from one chunk into the next, so the model still *sees* the whole
past; the gradient is not, so each update back-propagates through one chunk only:

    h = h0
    for each chunk (x_k, y_k):
        out, h_n = model(x_k, hx=h)           forward from the carried state
        loss, dout = loss_and_grad(out, y_k)
        model.backward(dout)                  returns dL/dh too: dropped, that is the cut
        (clip), optimizer.step()
        h = cut(h_n)                          the next chunk starts from these values

In torch the cut is ``h = h.detach()``: without it, the next backward would run on into the
previous chunk's graph. Here the state is plain arrays, and the cut is the gradient with
respect to hx that ``backward`` returns and nobody passes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from scratch._checks import check_positive_int
from scratch.clip import clip_grad_norm_, clip_grad_value_


def split_chunks(sequence: np.ndarray, chunk_length: int, *, axis: int = 0) -> list[np.ndarray]:
    """Consecutive chunks of ``chunk_length`` steps along ``axis``; the last may be shorter."""
    sequence = np.asarray(sequence)
    check_positive_int("chunk_length", chunk_length)
    if not -sequence.ndim <= axis < sequence.ndim:
        raise ValueError(f"axis {axis} is out of range for a sequence of shape {sequence.shape}")
    T = sequence.shape[axis]
    return [np.take(sequence, np.arange(start, min(start + chunk_length, T)), axis=axis)
            for start in range(0, T, chunk_length)]


def cut(state):
    """The state handed to the next chunk: a copy (a pair of copies for an LSTM)."""
    if isinstance(state, tuple):
        return tuple(np.array(s, copy=True) for s in state)
    return np.array(state, copy=True)


def train_step(model, optimizer, loss_and_grad: Callable, inputs, targets, hx=None, *,
               max_norm: float | None = None, clip_value: float | None = None,
               **forward_kwargs):
    """One update: zero the gradients, forward, loss, backward, clip, step.

    model: forward(inputs, hx, **forward_kwargs) -> (output, h_n), backward(dL/doutput).
    loss_and_grad(output, targets) -> (loss, dL/doutput), e.g. ``MSELoss().loss_and_grad``.
    max_norm: clip the gradients' joint 2-norm to it (clip_grad_norm_) before the step.
    clip_value: clamp every gradient entry to [-clip_value, clip_value] before the step.
    Returns (loss, h_n).
    """
    optimizer.zero_grad()
    output, h_n = model(inputs, hx, **forward_kwargs)
    loss, grad_output = loss_and_grad(output, targets)
    model.backward(grad_output)  # dL/dhx, when returned, goes nowhere
    if max_norm is not None:
        clip_grad_norm_(model, max_norm)
    if clip_value is not None:
        clip_grad_value_(model, clip_value)
    optimizer.step()
    return loss, h_n


def train_tbptt(model, optimizer, loss_and_grad: Callable, input_chunks: Sequence,
                target_chunks: Sequence, hx=None, *, max_norm: float | None = None,
                clip_value: float | None = None):
    """One update per chunk, carrying the state across the cuts (see the module docstring).

    input_chunks, target_chunks: equally many chunks, in time order (``split_chunks`` makes
    them from one long sequence). hx: the state before the first chunk (zeros when None).
    Returns (the loss of each chunk, the state after the last chunk).
    """
    if len(input_chunks) != len(target_chunks):
        raise ValueError(f"input_chunks has {len(input_chunks)} chunks but target_chunks has "
                         f"{len(target_chunks)}: one target chunk per input chunk is expected")
    losses = []
    state = hx
    for x_k, y_k in zip(input_chunks, target_chunks):
        loss, h_n = train_step(model, optimizer, loss_and_grad, x_k, y_k, state,
                               max_norm=max_norm, clip_value=clip_value)
        losses.append(loss)
        state = cut(h_n)
    return losses, state
