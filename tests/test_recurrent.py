"""The recurrent layers (scratch.RNN, LSTM, GRU): gradients against finite differences,
everything against torch.nn, layouts, variable lengths, dropout, gradient accumulation."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import (
    MODES,
    Data,
    Result,
    as_list,
    assert_close,
    assert_results_close,
    case_id,
    cases,
    check_module_against_fd,
    f32_rel,
    layer_case,
    make_data,
    make_module,
    option_cases,
    run_scratch,
    run_torch,
    user_shape,
)
from hypothesis import given, settings

import scratch
import torch_impl
from parity.case import Case
from parity.spec import MODES as SPEC_MODES
from parity.spec import layer_options

pytestmark = pytest.mark.filterwarnings(
    "ignore:LSTM with projections is not supported with oneDNN"
)

ALL_OPTION_CASES = [case for mode in MODES for case in option_cases(mode)]


def rng_for(case: Case, salt: int = 0) -> np.random.Generator:
    """A Generator seeded from the case, so that each case draws its own numbers."""
    return np.random.default_rng([salt, *case_id(case).encode()])


# -- gradients against central finite differences -------------------------------------------
@pytest.mark.parametrize("case", ALL_OPTION_CASES, ids=case_id)
def test_gradients_match_finite_differences(case):
    module = make_module(case, seed=1)
    check_module_against_fd(module, make_data(case, rng_for(case)))


@settings(max_examples=15)
@given(case=cases(max_layers=2, max_T=4))
def test_gradients_match_finite_differences_on_drawn_cases(case):
    module = make_module(case, seed=1)
    check_module_against_fd(module, make_data(case, rng_for(case)))


def random_masks(case: Case, p: float, rng: np.random.Generator, dtype=np.float64):
    """num_layers - 1 inverted-dropout masks (values 0 or 1/(1-p)) in the output layout,
    each with at least one dropped and one kept element."""
    shape = user_shape(case, case.num_directions * case.h_out)
    masks = []
    for _ in range(case.num_layers - 1):
        keep = rng.random(shape) >= p
        keep.flat[:2] = (False, True)
        masks.append((keep / (1.0 - p)).astype(dtype))
    return masks


DROPOUT_CASES = [
    layer_case(mode, num_layers=3, dropout=0.5, bidirectional=mode in ("LSTM", "RNN_TANH"),
               batch_first=mode == "GRU", proj_size=1 if mode == "LSTM" else 0, hidden_size=2)
    for mode in MODES
] + [layer_case("LSTM", num_layers=2, dropout=0.3, batch=3, seq_len=4, lengths=(4, 1, 3),
                 bidirectional=True),
     layer_case("GRU", num_layers=2, dropout=0.3, unbatched=True, batch=1)]


@pytest.mark.parametrize("case", DROPOUT_CASES, ids=case_id)
def test_gradients_with_explicit_dropout_masks_match_finite_differences(case):
    module = make_module(case, seed=2)
    masks = random_masks(case, case.dropout, rng_for(case, 1))
    assert any(np.any(m == 0) for m in masks) and any(np.any(m > 1) for m in masks)
    check_module_against_fd(module, make_data(case, rng_for(case)), dropout_masks=masks)


# -- against torch.nn, float64 --------------------------------------------------------------
@pytest.mark.parametrize("case", ALL_OPTION_CASES, ids=case_id)
def test_matches_torch_float64(case):
    module = make_module(case, seed=3)
    data = make_data(case, rng_for(case, 3))
    assert_results_close(run_scratch(module, data), run_torch(module, data))


@settings(max_examples=100)
@given(case=cases())
def test_matches_torch_float64_on_drawn_cases(case):
    module = make_module(case, seed=4)
    data = make_data(case, rng_for(case, 4))
    assert_results_close(run_scratch(module, data), run_torch(module, data))


FLOAT32_CASES = [c for c in ALL_OPTION_CASES if c.num_layers == 2 or c.proj_size]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=case_id)
def test_matches_torch_float32_loosely(case):
    """float32 on both sides, against parity/tolerances.py's float32 bound."""
    module = make_module(case, dtype=np.float32, seed=5)
    data = make_data(case, rng_for(case, 5), dtype=np.float32)
    ours = run_scratch(module, data)
    assert ours.output.dtype == np.float32 and ours.grad_input.dtype == np.float32
    assert all(g.dtype == np.float32 for g in ours.param_grads.values())
    assert_results_close(ours, run_torch(module, data),
                         rel=f32_rel(case.seq_len, case.num_layers))


# -- dropout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_dropout_zero_in_train_mode_matches_torch(mode):
    case = layer_case(mode, num_layers=3, bidirectional=True, dropout=0.0)
    module = make_module(case, seed=6).train()
    data = make_data(case, rng_for(case, 6))
    assert_results_close(run_scratch(module, data), run_torch(module, data))


@pytest.mark.parametrize("mode", MODES)
def test_dropout_one_in_train_mode_matches_torch(mode):
    """p = 1 zeroes every layer's output that feeds another layer: layers > 0 see zeros."""
    case = layer_case(mode, num_layers=3, bidirectional=mode != "GRU", dropout=1.0)
    module = make_module(case, seed=7).train()
    data = make_data(case, rng_for(case, 7))
    ours = run_scratch(module, data)
    assert module.last_dropout_masks is not None and len(module.last_dropout_masks) == 2
    assert all(np.all(m == 0) for m in module.last_dropout_masks)
    assert_results_close(ours, run_torch(module, data))
    assert np.abs(ours.grad_input).max() > 0  # through layer 0's h_n, not its output


@pytest.mark.parametrize("mode", MODES)
def test_eval_mode_ignores_dropout_and_matches_torch(mode):
    case = layer_case(mode, num_layers=2, dropout=0.5, batch=3, seq_len=4,
                      lengths=(4, 2, 1))
    module = make_module(case, seed=8).eval()
    data = make_data(case, rng_for(case, 8))
    ours = run_scratch(module, data)
    assert module.last_dropout_masks is None
    assert_results_close(ours, run_torch(module, data))


@pytest.mark.parametrize("mode", MODES)
def test_drawn_dropout_masks_are_inverted_dropout_and_replayable(mode):
    case = layer_case(mode, num_layers=3, dropout=0.25, batch_first=True, batch=3,
                      seq_len=5)
    module = make_module(case, seed=9).train()
    data = make_data(case, rng_for(case, 9))
    output, _ = module(data.x, data.hx)
    masks = module.last_dropout_masks
    assert masks is not None and len(masks) == 2
    for mask in masks:
        assert mask.shape == user_shape(case, case.h_out)
        assert set(np.unique(mask)) <= {0.0, 1.0 / 0.75}
        assert np.any(mask == 0) and np.any(mask > 0)
    replayed, _ = module(data.x, data.hx, dropout_masks=[m.copy() for m in masks])
    assert_close(replayed, output, "output with the replayed masks")
    again, _ = module(data.x, data.hx)  # fresh masks from the Generator
    assert not np.array_equal(module.last_dropout_masks[0], masks[0])
    assert not np.array_equal(again, output)


def torch_layer_by_layer(module, case: Case, data: Data, masks) -> Result:
    """The layers as separate one-layer torch.nn modules with the masks applied between
    them: a torch reference that accepts explicit dropout masks (no variable lengths)."""
    state = module.state_dict()
    D, L = case.num_directions, case.num_layers
    x = torch.tensor(data.x, requires_grad=True)
    hx_parts = [torch.tensor(h, requires_grad=True) for h in as_list(data.hx)]
    layer_input, h_n_parts, layers = x, [], []
    for k in range(L):
        one = make_module(replace(case, num_layers=1, dropout=0.0,
                                  input_size=case.input_size if k == 0 else D * case.h_out))
        one.load_state_dict({re.sub(rf"_l{k}(_reverse)?$", r"_l0\1", name): value
                             for name, value in state.items()
                             if re.search(rf"_l{k}(_reverse)?$", name)})
        twin = torch_impl.to_torch(one)
        layers.append(twin)
        hx = [part[k * D:(k + 1) * D] for part in hx_parts]  # rows l*D + d, batched or not
        hx_k = None if not hx else (tuple(hx) if case.mode == "LSTM" else hx[0])
        output, h_k = twin(layer_input, hx_k)
        h_n_parts.append(list(h_k) if isinstance(h_k, tuple) else [h_k])
        layer_input = output * torch.tensor(masks[k]) if k < L - 1 else output
    state_out = [torch.cat([p[j] for p in h_n_parts]) for j in range(len(h_n_parts[0]))]
    loss = (layer_input * torch.tensor(data.grad_output)).sum()
    for g, s in zip(as_list(data.grad_state), state_out):
        loss = loss + (s * torch.tensor(g)).sum()
    loss.backward()
    grads = {}
    for k, twin in enumerate(layers):
        for name, param in twin.named_parameters():
            assert param.grad is not None
            grads[name.replace("_l0", f"_l{k}")] = param.grad.numpy()
    grads = {name: grads[name] for name in state}  # the order of the state dict
    return Result(layer_input.detach().numpy(), [s.detach().numpy() for s in state_out],
                  x.grad.numpy(), [p.grad.numpy() for p in hx_parts], grads)


@pytest.mark.parametrize("case", [c for c in DROPOUT_CASES if c.lengths is None],
                         ids=case_id)
def test_explicit_dropout_masks_match_torch_layer_by_layer(case):
    module = make_module(case, seed=10).train()
    data = make_data(case, rng_for(case, 10))
    masks = random_masks(case, case.dropout, rng_for(case, 11))
    ours = run_scratch(module, data, dropout_masks=masks)
    assert module.last_dropout_masks is not None
    for used, given_mask in zip(module.last_dropout_masks, masks):
        assert np.array_equal(used, given_mask)
    assert_results_close(ours, torch_layer_by_layer(module, case, data, masks))


# -- layouts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_batch_first_is_the_transposed_layout(mode):
    case = layer_case(mode, num_layers=2, bidirectional=True, batch=3, seq_len=4,
                      lengths=(4, 1, 2))
    time_major = make_module(case, seed=11)
    batch_first = make_module(replace(case, batch_first=True), seed=11)
    data = make_data(case, rng_for(case, 11))
    ours = run_scratch(time_major, data)
    swapped = Data(data.x.transpose(1, 0, 2).copy(), data.hx, data.lengths,
                   data.grad_output.transpose(1, 0, 2).copy(), data.grad_state)
    theirs = run_scratch(batch_first, swapped)
    assert_close(theirs.output, ours.output.transpose(1, 0, 2), "output")
    assert_close(theirs.grad_input, ours.grad_input.transpose(1, 0, 2), "grad_input")
    for a, b in zip(theirs.state + theirs.grad_hx, ours.state + ours.grad_hx):
        assert_close(a, b, "h_n, c_n or their gradients (never batch-first)")
    for name in ours.param_grads:
        assert_close(theirs.param_grads[name], ours.param_grads[name], f"grad of {name}")


def with_batch_axis(data: Data, mode: str) -> Data:
    """Unbatched data as a batch of one, time-major: (T, I) -> (T, 1, I), (L*D, H) ->
    (L*D, 1, H)."""
    def pair_or_one(parts):
        parts = [p[:, None] for p in parts]
        if not parts:
            return None
        return tuple(parts) if mode == "LSTM" else parts[0]

    return Data(data.x[:, None], pair_or_one(as_list(data.hx)), None,
                data.grad_output[:, None], pair_or_one(as_list(data.grad_state)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input_is_batch_of_one_and_ignores_batch_first(mode, batch_first):
    case = layer_case(mode, num_layers=2, bidirectional=True, unbatched=True, batch=1,
                      batch_first=batch_first)
    module = make_module(case, seed=12)
    data = make_data(case, rng_for(case, 12))
    ours = run_scratch(module, data)
    assert ours.output.shape == (case.seq_len, 2 * case.h_out)
    assert ours.grad_input.shape == data.x.shape
    batched_module = make_module(replace(case, unbatched=False, batch=1, batch_first=False),
                                 seed=12)
    reference = run_scratch(batched_module, with_batch_axis(data, mode))
    assert_close(ours.output, reference.output[:, 0], "output")
    assert_close(ours.grad_input, reference.grad_input[:, 0], "grad_input")
    for a, b in zip(ours.state + ours.grad_hx, reference.state + reference.grad_hx):
        assert_close(a, b[:, 0], "state or its gradient")
    for name in ours.param_grads:
        assert_close(ours.param_grads[name], reference.param_grads[name], f"grad of {name}")


@pytest.mark.parametrize("case", [
    layer_case("RNN_TANH", num_layers=2, bidirectional=True),
    layer_case("RNN_RELU", bidirectional=True, batch_first=True),
    layer_case("LSTM", num_layers=3, bidirectional=True, proj_size=2),
    layer_case("LSTM", num_layers=2, bidirectional=True, unbatched=True, batch=1),
    layer_case("GRU", num_layers=2, bidirectional=True, hx=False),
], ids=case_id)
def test_bidirectional_layout_of_h_n(case):
    module = make_module(case, seed=13)
    data = make_data(case, rng_for(case, 13))
    output, state = module(data.x, data.hx)
    h_n = as_list(state)[0]
    H = case.h_out
    if case.unbatched:
        output, h_n = output[:, None, :], h_n[:, None, :]
    elif case.batch_first:
        output = output.transpose(1, 0, 2)
    assert output.shape[-1] == 2 * H
    assert np.array_equal(h_n[-2], output[-1, :, :H])  # forward direction ends at t = T-1
    assert np.array_equal(h_n[-1], output[0, :, H:])  # reverse direction ends at t = 0


# -- variable lengths -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_lengths_pad_with_zeros_and_stop_gradients(mode, batch_first):
    lengths = (5, 1, 3, 5)
    case = layer_case(mode, num_layers=2, bidirectional=True, batch_first=batch_first,
                      batch=4, seq_len=5, lengths=lengths, proj_size=1 if mode == "LSTM" else 0)
    module = make_module(case, seed=14)
    data = make_data(case, rng_for(case, 14))
    ours = run_scratch(module, data)
    output, grad_input = ours.output, ours.grad_input
    if batch_first:
        output, grad_input = output.transpose(1, 0, 2), grad_input.transpose(1, 0, 2)
    for b, n in enumerate(lengths):
        assert np.all(output[n:, b] == 0), f"padded outputs of sequence {b} are not zero"
        assert np.all(grad_input[n:, b] == 0), f"padded input gradients of {b} are not zero"
        assert np.any(output[n - 1, b] != 0) and np.any(grad_input[0, b] != 0)


@pytest.mark.parametrize("mode", MODES)
def test_each_sequence_of_a_padded_batch_is_that_sequence_alone(mode):
    """With lengths, sequence b gives what it gives when run alone, cut to its length."""
    lengths = (4, 1, 2)
    case = layer_case(mode, num_layers=2, bidirectional=True, batch=3, seq_len=4, lengths=lengths)
    module = make_module(case, seed=15)
    data = make_data(case, rng_for(case, 15))
    output, state = module(data.x, data.hx, data.lengths)
    for b, n in enumerate(lengths):
        alone_hx = [h[:, b:b + 1] for h in as_list(data.hx)]
        alone_out, alone_state = module(data.x[:n, b:b + 1],
                                        tuple(alone_hx) if mode == "LSTM" else alone_hx[0])
        assert_close(output[:n, b], alone_out[:, 0], f"output of sequence {b}")
        for part, alone in zip(as_list(state), as_list(alone_state)):
            assert_close(part[:, b], alone[:, 0], f"final state of sequence {b}")


@pytest.mark.parametrize("mode", MODES)
def test_full_lengths_equal_no_lengths(mode):
    case = layer_case(mode, num_layers=2, bidirectional=True, batch=3, seq_len=3)
    module = make_module(case, seed=16)
    data = make_data(case, rng_for(case, 16))
    without = run_scratch(module, data)
    data.lengths = [3, 3, 3]
    with_lengths = run_scratch(module, data)
    assert_results_close(with_lengths, without)


# -- empty batch ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hx_given", [False, True])
def test_empty_batch_works_like_torch(mode, hx_given):
    """B = 0 (which no parity Case describes): the layer and its arrays are built here."""
    T, I, H, L, D = 3, 2, 3, 2, 2
    P = 2 if mode == "LSTM" else 0
    H_out = P or H
    module = getattr(scratch, SPEC_MODES[mode].cls)(
        I, H, num_layers=L, bidirectional=True, **layer_options(mode, P), seed=17)
    rng = np.random.default_rng(17)

    def draw(*shape):
        return rng.uniform(-1.0, 1.0, size=shape)

    def state():  # h (L*D, 0, H_out), with c (L*D, 0, H) for LSTM
        h = draw(L * D, 0, H_out)
        return (h, draw(L * D, 0, H)) if mode == "LSTM" else h

    hx = state() if hx_given else None
    data = Data(draw(T, 0, I), hx, None, draw(T, 0, D * H_out), state())
    ours = run_scratch(module, data)
    assert ours.output.shape == (T, 0, D * H_out)
    assert ours.grad_input.shape == (T, 0, I)
    for grad in ours.param_grads.values():
        assert np.all(grad == 0)
    assert_results_close(ours, run_torch(module, data))


# -- gradient accumulation --------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_two_backward_passes_add_and_zero_grad_clears(mode):
    case = layer_case(mode, num_layers=2, bidirectional=True,
                      proj_size=1 if mode == "LSTM" else 0)
    module = make_module(case, seed=18)
    first = make_data(case, rng_for(case, 18))
    second = make_data(case, rng_for(case, 19))
    grads_first = run_scratch(module, first).param_grads  # run_scratch zeroes grads first
    grads_second = run_scratch(module, second).param_grads

    module.zero_grad()
    for data in (first, second):
        module(data.x, data.hx)
        module.backward(data.grad_output, data.grad_state)
    for name, grad in module.grads.items():
        assert_close(grad, grads_first[name] + grads_second[name], f"accumulated {name}")
        assert not np.allclose(grad, grads_first[name])

    module.zero_grad()
    assert all(np.all(grad == 0) for grad in module.grads.values())
    assert set(module.grads) == set(module.state_dict())


def test_grads_are_the_modules_own_arrays():
    module = make_module(layer_case("GRU"), seed=20)
    grads_before = module.grads
    data = make_data(layer_case("GRU"), np.random.default_rng(0))
    module(data.x, data.hx)
    module.backward(data.grad_output, data.grad_state)
    for name, grad in module.grads.items():
        assert grad is grads_before[name]
        assert np.any(grad != 0)
