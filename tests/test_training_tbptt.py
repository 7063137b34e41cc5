"""Truncated BPTT: chunks, the cut, and whole chunked runs against torch's detach()."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import F64_REL, assert_close

import scratch
import torch_impl
from scratch.losses import flat_cross_entropy
from scratch.tbptt import cut, split_chunks, train_step, train_tbptt
from torch_impl import models as torch_models


def test_split_chunks_cover_the_sequence_in_order():
    x = np.arange(2 * 11 * 3).reshape(2, 11, 3)
    chunks = split_chunks(x, 4, axis=1)
    assert [c.shape for c in chunks] == [(2, 4, 3), (2, 4, 3), (2, 3, 3)]
    assert np.array_equal(np.concatenate(chunks, axis=1), x)
    assert [c.shape[0] for c in split_chunks(np.zeros(8), 4)] == [4, 4]
    with pytest.raises(ValueError, match="chunk_length must be greater than zero"):
        split_chunks(x, 0)
    with pytest.raises(ValueError, match=r"axis 3 is out of range.*\(2, 11, 3\)"):
        split_chunks(x, 2, axis=3)


def test_cut_copies_the_state():
    h, c = np.ones((1, 2, 3)), np.zeros((1, 2, 3))
    h2, c2 = cut((h, c))
    assert np.array_equal(h2, h) and h2 is not h and c2 is not c
    h3 = cut(h)
    h[...] = 5.0
    assert not np.any(h3 == 5.0)


def lm_and_stream(kind, seed=0, T=15, B=2, V=7):
    model = scratch.CharLM(V, 3, 5, kind=kind, seed=seed)
    tokens = np.random.default_rng(seed).integers(0, V, size=(T + 1, B))
    return model, tokens[:-1], tokens[1:]


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_truncated_gradient_is_the_chunks_own_and_differs_from_full_bptt(kind):
    """After two chunks with lr = 0, the gradients are those of chunk 2's loss with the carried
    state held constant; full BPTT of the same loss, back into chunk 1, differs."""
    model, x, y = lm_and_stream(kind)
    ce = scratch.CrossEntropyLoss()
    loss_and_grad = partial(flat_cross_entropy, ce)
    xs, ys = split_chunks(x, 8), split_chunks(y, 8)
    train_tbptt(model, scratch.SGD(model, lr=0.0), loss_and_grad, xs, ys)
    truncated = {k: g.copy() for k, g in model.grads.items()}

    # the same loss (chunk 2's), back-propagated through the whole sequence
    model.zero_grad()
    logits, _ = model(x)
    n1 = xs[0].shape[0]
    _, dlogits_2 = flat_cross_entropy(ce, logits[n1:], y[n1:])
    dlogits = np.zeros_like(logits)
    dlogits[n1:] = dlogits_2
    model.backward(dlogits)
    full = {k: g.copy() for k, g in model.grads.items()}  # zero_grad() clears model.grads

    # by hand: chunk 1 forward for the state, then chunk 2 from that state as a constant
    model.zero_grad()
    _, h1 = model(xs[0])
    logits_2, _ = model(xs[1], h1)
    _, dlogits_2 = flat_cross_entropy(ce, logits_2, ys[1])
    model.backward(dlogits_2)
    for key, grad in model.grads.items():
        assert_close(truncated[key], grad, f"truncated d{key}")
    rnn_keys = [k for k in full if k.startswith("rnn.")]
    differences = [np.max(np.abs(full[k] - truncated[k])) for k in rnn_keys]
    assert max(differences) > 1e-3, "the cut made no difference: is the state carried?"


@pytest.mark.parametrize("kind, optimizer", [("lstm", "adam"), ("gru", "sgd"), ("rnn", "sgd")])
def test_tbptt_run_matches_torch_detach(kind, optimizer):
    model, x, y = lm_and_stream(kind, seed=3, T=40, B=3)
    twin = torch_impl.to_torch(model)
    xs, ys = split_chunks(x, 6), split_chunks(y, 6)
    if optimizer == "adam":
        ours, theirs = scratch.Adam(model, lr=0.02), torch.optim.Adam(twin.parameters(), lr=0.02)
    else:
        ours = scratch.SGD(model, lr=0.3, momentum=0.9)
        theirs = torch.optim.SGD(twin.parameters(), lr=0.3, momentum=0.9)
    losses, state = train_tbptt(model, ours, partial(flat_cross_entropy,
                                scratch.CrossEntropyLoss()), xs, ys, max_norm=1.0)

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    losses_t, state_t = torch_models.train_tbptt(
        twin, theirs, loss_fn, [torch.as_tensor(c) for c in xs],
        [torch.as_tensor(c) for c in ys], max_norm=1.0)
    assert len(losses) == len(xs) == 7
    assert_close(np.array(losses), np.array(losses_t), "loss of each chunk")
    for key, param in twin.named_parameters():
        assert_close(model.state_dict()[key], param.detach().numpy(), key)
    states = state if isinstance(state, tuple) else (state,)
    states_t = state_t if isinstance(state_t, tuple) else (state_t,)
    for ours_s, theirs_s in zip(states, states_t):
        assert not theirs_s.requires_grad  # torch's side really was cut
        assert_close(ours_s, theirs_s.numpy(), "state after the last chunk")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_tbptt_from_a_given_state_matches_torch_and_uses_it(kind):
    model, x, y = lm_and_stream(kind, seed=6, T=18, B=2)
    twin = torch_impl.to_torch(model)
    rng = np.random.default_rng(6)
    shape = (1, 2, 5)  # (num_layers, B, hidden_size)
    hx = ((0.5 * rng.standard_normal(shape), 0.5 * rng.standard_normal(shape))
          if kind == "lstm" else 0.5 * rng.standard_normal(shape))
    hx_t = (tuple(torch.as_tensor(h.copy()) for h in hx) if kind == "lstm"
            else torch.as_tensor(hx.copy()))
    xs, ys = split_chunks(x, 6), split_chunks(y, 6)
    loss_and_grad = partial(flat_cross_entropy, scratch.CrossEntropyLoss())
    losses, state = train_tbptt(model, scratch.SGD(model, lr=0.3), loss_and_grad, xs, ys,
                                hx=cut(hx))

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    losses_t, state_t = torch_models.train_tbptt(
        twin, torch.optim.SGD(twin.parameters(), lr=0.3), loss_fn,
        [torch.as_tensor(c) for c in xs], [torch.as_tensor(c) for c in ys], hx=hx_t)
    assert len(losses) == len(losses_t) == 3
    assert_close(np.array(losses), np.array(losses_t), "loss of each chunk")
    for key, param in twin.named_parameters():
        assert_close(model.state_dict()[key], param.detach().numpy(), key)
    states = state if isinstance(state, tuple) else (state,)
    states_t = state_t if isinstance(state_t, tuple) else (state_t,)
    assert len(states) == len(states_t) == (2 if kind == "lstm" else 1)
    for ours_s, theirs_s in zip(states, states_t, strict=True):
        assert_close(ours_s, theirs_s.numpy(), "state after the last chunk")
    # the given state is what the first chunk starts from: from zeros its loss differs
    fresh, _, _ = lm_and_stream(kind, seed=6, T=18, B=2)
    from_zeros, _ = train_tbptt(fresh, scratch.SGD(fresh, lr=0.3), loss_and_grad, xs[:1],
                                ys[:1])
    assert abs(from_zeros[0] - losses[0]) > 1e-6


def test_carrying_the_state_changes_the_run():
    """Starting every chunk from zeros is a different run: the carried state is used."""
    model, x, y = lm_and_stream("gru", seed=4, T=24)
    fresh = scratch.CharLM(7, 3, 5, kind="gru", seed=4)
    xs, ys = split_chunks(x, 6), split_chunks(y, 6)
    loss_and_grad = partial(flat_cross_entropy, scratch.CrossEntropyLoss())
    carried, _ = train_tbptt(model, scratch.SGD(model, lr=0.1), loss_and_grad, xs, ys)
    opt = scratch.SGD(fresh, lr=0.1)
    reset = [train_step(fresh, opt, loss_and_grad, xk, yk)[0] for xk, yk in zip(xs, ys)]
    assert carried[0] == reset[0]
    assert all(abs(a - b) > 1e-6 for a, b in zip(carried[1:], reset[1:]))


def test_train_step_with_lengths_and_clipping_matches_torch():
    model = scratch.SimpleRNN(2, 4, 1, kind="lstm", seed=5)
    twin = torch_impl.to_torch(model)
    rng = np.random.default_rng(5)
    x, target = rng.standard_normal((6, 3, 2)), rng.standard_normal((3, 1))
    lengths = np.array([6, 2, 4])
    opt, opt_t = scratch.SGD(model, lr=0.5), torch.optim.SGD(twin.parameters(), lr=0.5)
    loss, _ = train_step(model, opt, scratch.MSELoss().loss_and_grad, x, target,
                         lengths=lengths, max_norm=0.05, clip_value=0.01)
    loss_t, _ = torch_models.train_step(twin, opt_t, F.mse_loss, torch.as_tensor(x),
                                        torch.as_tensor(target), lengths=lengths,
                                        max_norm=0.05, clip_value=0.01)
    assert_close(loss, loss_t, "loss", F64_REL)
    for key, param in twin.named_parameters():
        assert_close(model.state_dict()[key], param.detach().numpy(), key)


def test_train_tbptt_refuses_unpaired_chunks():
    model, x, y = lm_and_stream("rnn")
    with pytest.raises(ValueError, match="input_chunks has 2 chunks but target_chunks has 1"):
        train_tbptt(model, scratch.SGD(model, lr=0.1), None, split_chunks(x, 8),
                    split_chunks(y, 8)[:1])
