"""SimpleRNN and CharLM against their torch twins, finite differences, twins and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import F64_REL, assert_close, assert_matches_fd
from hypothesis import given
from hypothesis import strategies as st

import scratch
import torch_impl
from parity.tolerances import tolerance
from torch_impl import models as torch_models
from torch_impl.models import TorchCharLM, TorchSimpleRNN


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def random_state(rng, model, rnn, B, batched, dtype):
    rows = rnn.num_layers * rnn.num_directions
    lead = (rows, B) if batched else (rows,)
    h = rng.standard_normal((*lead, rnn.output_hidden_size)).astype(dtype)
    if rnn.mode == "LSTM":
        return h, rng.standard_normal((*lead, rnn.hidden_size)).astype(dtype)
    return h


@given(data=st.data())
def test_simple_rnn_matches_torch(data):
    kind = data.draw(st.sampled_from(["rnn", "lstm", "gru"]), label="kind")
    nonlinearity = data.draw(st.sampled_from(["tanh", "relu"]), label="nonlinearity") \
        if kind == "rnn" else "tanh"
    num_layers = data.draw(st.integers(1, 2), label="num_layers")
    bidirectional = data.draw(st.booleans(), label="bidirectional")
    batch_first = data.draw(st.booleans(), label="batch_first")
    batched = data.draw(st.booleans(), label="batched")
    with_lengths = batched and data.draw(st.booleans(), label="lengths")
    with_hx = data.draw(st.booleans(), label="hx given")
    with_grad_h_n = data.draw(st.booleans(), label="grad_h_n given")
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    T, B = data.draw(st.integers(1, 5), label="T"), data.draw(st.integers(1, 3), label="B")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))

    model = scratch.SimpleRNN(3, 4, 2, kind=kind, num_layers=num_layers,
                              nonlinearity=nonlinearity, batch_first=batch_first,
                              bidirectional=bidirectional, dtype=dtype, seed=7)
    twin = torch_impl.to_torch(model)
    assert isinstance(twin, TorchSimpleRNN)
    shape = ((B, T, 3) if batch_first else (T, B, 3)) if batched else (T, 3)
    x = rng.standard_normal(shape).astype(dtype)
    lengths = rng.integers(1, T + 1, size=B) if with_lengths else None
    hx = random_state(rng, model, model.rnn, B, batched, dtype) if with_hx else None

    y, h_n = model(x, hx, lengths)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dh_n = tuple(rng.standard_normal(s.shape).astype(dtype) for s in as_tuple(h_n)) \
        if with_grad_h_n else None
    if dh_n is not None and kind != "lstm":
        dh_n = dh_n[0]
    dx, dhx = model.backward(dy, dh_n)

    xt = torch.tensor(x, requires_grad=True)
    hxt = None
    if hx is not None:
        hxt = tuple(torch.tensor(s, requires_grad=True) for s in as_tuple(hx))
        hxt = hxt if kind == "lstm" else hxt[0]
    yt, h_nt = twin(xt, hxt, lengths)
    outputs = [yt] + list(as_tuple(h_nt))
    upstream = [torch.tensor(dy)] + [torch.tensor(g) for g in as_tuple(dh_n)] \
        if dh_n is not None else [torch.tensor(dy)]
    torch.autograd.backward(outputs[:len(upstream)], upstream)

    rel = F64_REL if dtype == np.float64 else tolerance(dtype, T, num_layers)
    assert y.shape == tuple(yt.shape) == ((B, 2) if batched else (2,))
    assert_close(y, yt.detach().numpy(), "y", rel)
    for ours, theirs in zip(as_tuple(h_n), as_tuple(h_nt), strict=True):
        assert_close(ours, theirs.detach().numpy(), "h_n", rel)
    assert_close(dx, xt.grad.numpy(), "dx", rel)
    if hx is None:
        assert dhx is None
    else:
        for ours, theirs in zip(as_tuple(dhx), as_tuple(hxt), strict=True):
            assert_close(ours, theirs.grad.numpy(), "dhx", rel)
    for name, param in twin.named_parameters():
        assert param.grad is not None, name
        assert_close(model.grads[name], param.grad.numpy(), f"d{name}", rel)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_simple_rnn_head_reads_each_sequences_last_valid_step(kind):
    """With lengths, y of a sequence is the head on the state at its own last step: the same
    as running that sequence alone, cut to its length."""
    rng = np.random.default_rng(1)
    model = scratch.SimpleRNN(2, 3, 2, kind=kind, seed=1)
    x = rng.standard_normal((6, 3, 2))
    lengths = np.array([6, 2, 4])
    y, _ = model(x, lengths=lengths)
    for b, n in enumerate(lengths):
        alone, _ = model(x[:n, b])
        assert_close(y[b], alone, f"sequence {b}")


def test_simple_rnn_matches_finite_differences():
    rng = np.random.default_rng(2)
    model = scratch.SimpleRNN(2, 3, 2, kind="gru", num_layers=2, bidirectional=True, seed=2)
    x = rng.standard_normal((4, 2, 2))
    lengths = np.array([4, 3])
    weights = rng.standard_normal((2, 2))

    def loss():
        return float(np.sum(weights * model(x, lengths=lengths)[0]))

    loss()
    dx, _ = model.backward(weights)
    assert_matches_fd(dx, loss, x, "dx")
    for name, param in model.named_parameters():
        assert_matches_fd(model.grads[name], loss, param, f"d{name}")


@given(data=st.data())
def test_char_lm_matches_torch(data):
    kind = data.draw(st.sampled_from(["rnn", "lstm", "gru"]), label="kind")
    num_layers = data.draw(st.integers(1, 2), label="num_layers")
    batch_first = data.draw(st.booleans(), label="batch_first")
    with_hx = data.draw(st.booleans(), label="hx given")
    T, B = data.draw(st.integers(1, 6), label="T"), data.draw(st.integers(1, 3), label="B")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    V = 6
    model = scratch.CharLM(V, 3, 4, kind=kind, num_layers=num_layers, batch_first=batch_first,
                           seed=3)
    twin = torch_impl.to_torch(model)
    assert isinstance(twin, TorchCharLM)
    tokens = rng.integers(0, V, size=(B, T) if batch_first else (T, B))
    hx = random_state(rng, model, model.rnn, B, True, np.float64) if with_hx else None

    logits, h_n = model(tokens, hx)
    dlogits = rng.standard_normal(logits.shape)
    dhx = model.backward(dlogits)

    hxt = None
    if hx is not None:
        hxt = tuple(torch.tensor(s, requires_grad=True) for s in as_tuple(hx))
        hxt = hxt if kind == "lstm" else hxt[0]
    logits_t, h_nt = twin(torch.as_tensor(tokens), hxt)
    logits_t.backward(torch.tensor(dlogits))
    assert logits.shape == tuple(logits_t.shape)
    assert_close(logits, logits_t.detach().numpy(), "logits")
    for ours, theirs in zip(as_tuple(h_n), as_tuple(h_nt), strict=True):
        assert_close(ours, theirs.detach().numpy(), "h_n")
    if hx is None:
        assert dhx is None
    else:
        for ours, theirs in zip(as_tuple(dhx), as_tuple(hxt), strict=True):
            assert_close(ours, theirs.grad.numpy(), "dhx")
    for name, param in twin.named_parameters():
        assert param.grad is not None, name
        assert_close(model.grads[name], param.grad.numpy(), f"d{name}")


def test_char_lm_matches_finite_differences():
    rng = np.random.default_rng(4)
    model = scratch.CharLM(5, 2, 3, kind="lstm", seed=4)
    tokens = rng.integers(0, 5, size=(4, 2))
    weights = rng.standard_normal((4, 2, 5))

    def loss():
        return float(np.sum(weights * model(tokens)[0]))

    loss()
    model.backward(weights)
    for name, param in model.named_parameters():
        assert_matches_fd(model.grads[name], loss, param, f"d{name}")


def test_state_dict_keys_are_torchs_and_twins_round_trip():
    model = scratch.SimpleRNN(3, 4, 2, kind="lstm", num_layers=2, seed=5)
    twin = torch_impl.to_torch(model)
    assert list(model.state_dict()) == list(twin.state_dict())
    assert list(model.state_dict())[:2] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    assert list(model.state_dict())[-2:] == ["head.weight", "head.bias"]
    back = torch_impl.from_torch(twin)
    assert type(back) is scratch.SimpleRNN and back.kind == "lstm" and back.rnn.num_layers == 2
    for (k, a), (_, b) in zip(model.named_parameters(), back.named_parameters(), strict=True):
        assert np.array_equal(a, b), k

    lm = scratch.CharLM(9, 3, 4, kind="gru", seed=6)
    lm_twin = torch_impl.to_torch(lm)
    assert list(lm.state_dict()) == list(lm_twin.state_dict())
    assert list(lm.state_dict())[0] == "embedding.weight"
    lm_back = torch_impl.from_torch(lm_twin)
    assert type(lm_back) is scratch.CharLM and lm_back.kind == "gru"
    for (k, a), (_, b) in zip(lm.named_parameters(), lm_back.named_parameters(), strict=True):
        assert np.array_equal(a, b), k


def test_layer_twins_round_trip():
    for module in (scratch.Linear(3, 2, bias=False, seed=0),
                   scratch.Embedding(5, 2, padding_idx=1, seed=0)):
        twin = torch_impl.to_torch(module)
        back = torch_impl.from_torch(twin)
        assert type(back) is type(module)
        assert repr(back) == repr(module)
        for (k, a), (_, b) in zip(module.named_parameters(), back.named_parameters(), strict=True):
            assert np.array_equal(a, b), k


def test_seeds_make_models_reproducible():
    a, b, c = (scratch.CharLM(5, 2, 3, seed=s) for s in (1, 1, 2))
    pairs = list(zip(a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True))
    assert all(np.array_equal(pa, pb) for (_, pa), (_, pb), _ in pairs)
    assert not any(np.array_equal(pa, pc) for (_, pa), _, (_, pc) in pairs)


def test_generate_draws_the_same_text_as_the_torch_twin():
    model = scratch.CharLM(8, 3, 6, kind="lstm", seed=8)
    model.train()
    twin = torch_impl.to_torch(model)
    ours = model.generate([1, 2, 3], 40, np.random.default_rng(0), temperature=0.8)
    theirs = torch_models.generate(twin, [1, 2, 3], 40, np.random.default_rng(0),
                                   temperature=0.8)
    assert np.array_equal(ours, theirs)
    assert len(set(ours.tolist())) > 2  # really sampled, not a constant
    assert model.training and twin.training  # the mode was restored
    other = model.generate([1, 2, 3], 40, np.random.default_rng(1), temperature=0.8)
    assert not np.array_equal(ours, other)


def test_sample_from_logits_is_inverse_cdf():
    logits = np.log(np.array([0.2, 0.5, 0.3]))
    picks = [scratch.models.sample_from_logits(logits, u) for u in (0.0, 0.19, 0.21, 0.69,
                                                                    0.71, 0.999)]
    assert picks == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        scratch.models.sample_from_logits(logits, 0.5, temperature=0)


def test_models_refuse_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        scratch.SimpleRNN(2, 3, 1, kind="transformer")
    with pytest.raises(ValueError, match="nonlinearity is an option of kind='rnn' only"):
        scratch.SimpleRNN(2, 3, 1, kind="gru", nonlinearity="relu")
    with pytest.raises(ValueError, match="output_size"):
        scratch.SimpleRNN(2, 3, 0)
    model = scratch.SimpleRNN(2, 3, 1, kind="lstm", seed=0)
    with pytest.raises(scratch.CallOrderError):
        model.backward(np.ones((4, 1)))
    y, (h, c) = model(np.ones((5, 4, 2)))
    head_grad_before = model.grads["head.weight"].copy()
    with pytest.raises(ValueError, match=r"grad_h_n\[1\] has shape \(1, 4, 2\), expected "
                                         r"\(1, 4, 3\)"):
        model.backward(np.ones((4, 1)), (None, np.ones((1, 4, 2))))
    assert np.array_equal(model.grads["head.weight"], head_grad_before)  # nothing was done
    model.backward(np.ones((4, 1)))
    lm = scratch.CharLM(4, 2, 3)
    with pytest.raises(ValueError, match=r"every index must be in 0\.\.3"):
        lm(np.array([[0, 4]]))
    with pytest.raises(ValueError, match="prompt must be a non-empty 1-D"):
        lm.generate([], 5, np.random.default_rng(0))
