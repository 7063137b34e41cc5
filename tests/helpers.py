"""Shared test helpers: test cases of the recurrent layers (parity.case.Case at the tests'
sizes, with short ids), random data, the comparison criteria, central finite differences,
and a runner of the torch.nn twin.

Every number a test feeds in is drawn at random and non-zero (weights, biases, h0, c0 and the
upstream gradients of output *and* h_n/c_n): zeros and all-ones gradients hide bias, state
and transposition bugs.

The criteria, all of the form |actual - expected| <= rel * max(1, max|expected|), element by
element:
* against torch: parity/tolerances.py, the project's one place for them. float64 is the exact
  oracle, rel = F64_REL (its FLOAT64_TOL); float32 is the looser second check,
  rel = f32_rel(T, num_layers), which grows with the depth of the unrolled graph.
* float64 analytic gradients against central differences: rel = FD_REL at step FD_EPS, the
  tests' pair derived in parity/tolerances.py (FD_TEST_TOL, FD_TEST_EPS).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

import scratch
from parity.case import Case
from parity.diff import numerical_gradient as _central_differences
from parity.spec import MODES as SPEC_MODES
from parity.spec import layer_options
from parity.tolerances import FD_TEST_EPS, FD_TEST_TOL, FLOAT64_TOL, tolerance

F64_REL = FLOAT64_TOL
FD_EPS = FD_TEST_EPS
FD_REL = FD_TEST_TOL

MODES = tuple(SPEC_MODES)


def f32_rel(seq_len: int, num_layers: int = 1) -> float:
    """The float32 rel against torch float32 for a case of this depth."""
    return tolerance(np.float32, seq_len, num_layers)


# -- comparison ---------------------------------------------------------------------------
def assert_close(actual, expected, name: str, rel: float = F64_REL) -> None:
    """|actual - expected| <= rel * max(1, max|expected|) element by element; same shape."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{name}: shape {actual.shape}, expected {expected.shape}"
    )
    if expected.size == 0:
        return
    bound = rel * max(1.0, float(np.max(np.abs(expected))))
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    worst = float(np.max(err))
    assert np.all(err <= bound), f"{name}: max |actual - expected| = {worst:.3g} > {bound:.3g}"


# -- test cases of the layers ---------------------------------------------------------------
TEST_SIZES = {"input_size": 2, "hidden_size": 3}  # the tests' layer sizes unless a case says


def layer_case(mode: str, **options) -> Case:
    """parity's layer Case at the tests' sizes (input_size 2, hidden_size 3 unless given).

    The helpers below read its layer and call fields only (mode, sizes, layers, directions,
    layout, bias, proj_size, dropout, unbatched, seq_len, batch, lengths, hx): the tests draw
    their own arrays from a Generator, with every upstream gradient non-zero, and pass dtype
    and seed themselves, so state_grad, dropout_mode, zero_input_steps, dtype, device and
    seed keep their defaults here."""
    return Case(mode, **{**TEST_SIZES, **options})


def case_id(case: Case) -> str:
    """A short test id: the mode and every field that differs from layer_case(mode)."""
    default = layer_case(case.mode)
    parts = [case.mode] + [
        f"{f.name}={getattr(case, f.name)}" for f in fields(case)
        if f.name != "mode" and getattr(case, f.name) != getattr(default, f.name)
    ]
    return ",".join(parts)


def option_cases(mode: str) -> list[Case]:
    """Every option of the layers, one at a time or in small groups, for one mode."""
    base = layer_case(mode)
    cases = [
        base,
        replace(base, num_layers=2, bidirectional=True),
        replace(base, num_layers=3, hidden_size=2),
        replace(base, batch_first=True, bidirectional=True),
        replace(base, bias=False, num_layers=2),
        replace(base, batch=3, seq_len=4, lengths=(4, 1, 2), num_layers=2, bidirectional=True),
        replace(base, batch=3, seq_len=4, lengths=(2, 4, 1), batch_first=True),
        replace(base, hx=False, num_layers=2, bidirectional=True),
        replace(base, unbatched=True, batch=1, num_layers=2, bidirectional=True,
                batch_first=True),
        replace(base, seq_len=1, batch=1),
    ]
    if mode == "LSTM":
        cases += [
            replace(base, proj_size=2),
            replace(base, proj_size=1, num_layers=2, bidirectional=True, batch=3, seq_len=4,
                    lengths=(1, 4, 3)),
            replace(base, proj_size=2, unbatched=True, batch=1, bias=False, hidden_size=4),
        ]
    return cases


def make_module(case: Case, dtype=np.float64, seed: int = 0):
    common: dict[str, Any] = dict(
        num_layers=case.num_layers, bias=case.bias, batch_first=case.batch_first,
        dropout=case.dropout, bidirectional=case.bidirectional, dtype=dtype, seed=seed,
    )
    I, H = case.input_size, case.hidden_size
    return getattr(scratch, SPEC_MODES[case.mode].cls)(
        I, H, **layer_options(case.mode, case.proj_size), **common)


@dataclass
class Data:
    """What one call feeds in: input, hx (None, an array, or a pair for LSTM), lengths, and
    the upstream gradients of output and of h_n (a pair for LSTM)."""

    x: np.ndarray
    hx: Any
    lengths: list[int] | None
    grad_output: np.ndarray
    grad_state: Any


def user_shape(case: Case, width: int) -> tuple[int, ...]:
    """The shape of a (T, B, width) sequence in the case's layout."""
    if case.unbatched:
        return (case.seq_len, width)
    if case.batch_first:
        return (case.batch, case.seq_len, width)
    return (case.seq_len, case.batch, width)


def state_shape(case: Case, width: int) -> tuple[int, ...]:
    rows = case.num_layers * case.num_directions
    return (rows, width) if case.unbatched else (rows, case.batch, width)


def make_data(case: Case, rng: np.random.Generator, dtype=np.float64) -> Data:
    def draw(shape, low=-1.0, high=1.0):
        return rng.uniform(low, high, size=shape).astype(dtype)

    x = draw(user_shape(case, case.input_size), -2.0, 2.0)
    grad_output = draw(user_shape(case, case.num_directions * case.h_out))
    h_shape = state_shape(case, case.h_out)
    c_shape = state_shape(case, case.hidden_size)
    if case.mode == "LSTM":
        hx = (draw(h_shape), draw(c_shape)) if case.hx else None
        grad_state = (draw(h_shape), draw(c_shape))
    else:
        hx = draw(h_shape) if case.hx else None
        grad_state = draw(h_shape)
    lengths = None if case.lengths is None else list(case.lengths)
    return Data(x, hx, lengths, grad_output, grad_state)


def as_list(state) -> list:
    """h_n -> [h_n]; (h_n, c_n) -> [h_n, c_n]; None -> []."""
    if state is None:
        return []
    return list(state) if isinstance(state, (tuple, list)) else [state]


# -- results of one forward + backward ------------------------------------------------------
@dataclass
class Result:
    output: np.ndarray
    state: list  # [h_n] or [h_n, c_n]
    grad_input: np.ndarray
    grad_hx: list  # [] without hx, [dh0] or [dh0, dc0]
    param_grads: dict  # name -> gradient


def weighted_sum(output, state, data: Data) -> float:
    """The loss whose gradients are tested: <grad_output, output> + <grad_state, state>."""
    loss = float(np.sum(data.grad_output * output))
    for g, s in zip(as_list(data.grad_state), as_list(state)):
        loss += float(np.sum(g * s))
    return loss


def run_scratch(module, data: Data, dropout_masks=None) -> Result:
    module.zero_grad()
    output, state = module.forward(data.x, data.hx, data.lengths, dropout_masks=dropout_masks)
    grad_input, grad_hx = module.backward(data.grad_output, data.grad_state)
    grads = {name: g.copy() for name, g in module.named_grads()}
    return Result(output, as_list(state), grad_input, as_list(grad_hx), grads)


def run_torch(module, data: Data) -> Result:
    """The same call on the torch.nn twin (weights, dtype, mode and layout copied), with
    autograd.

    Variable lengths go through pack_padded_sequence(..., enforce_sorted=False) and
    pad_packed_sequence(..., total_length=T), T read from the input."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    import torch_impl

    twin = torch_impl.to_torch(module)
    x = torch.tensor(data.x, requires_grad=True)
    hx_parts = [torch.tensor(h, requires_grad=True) for h in as_list(data.hx)]
    hx = None
    if hx_parts:
        hx = tuple(hx_parts) if module.mode == "LSTM" else hx_parts[0]
    if data.lengths is None:
        output, state = twin(x, hx)
    else:
        batch_first = module.batch_first
        packed = pack_padded_sequence(x, torch.tensor(data.lengths, dtype=torch.int64),
                                      batch_first=batch_first, enforce_sorted=False)
        packed_output, state = twin(packed, hx)
        output, _ = pad_packed_sequence(packed_output, batch_first=batch_first,
                                        total_length=x.shape[1 if batch_first else 0])
    state_parts = list(state) if isinstance(state, tuple) else [state]
    loss = (output * torch.tensor(data.grad_output)).sum()
    for g, s in zip(as_list(data.grad_state), state_parts):
        loss = loss + (s * torch.tensor(g)).sum()
    loss.backward()
    grads = {}
    for name, param in twin.named_parameters():
        assert param.grad is not None, f"torch left {name}.grad None"
        grads[name] = param.grad.numpy()
    for part in hx_parts:
        assert part.grad is not None, "torch left the grad of hx None"
    assert x.grad is not None, "torch left the grad of the input None"
    return Result(
        output.detach().numpy(),
        [s.detach().numpy() for s in state_parts],
        x.grad.numpy(),
        [p.grad.numpy() for p in hx_parts],
        grads,
    )


def assert_results_close(ours: Result, theirs: Result, rel: float = F64_REL) -> None:
    assert_close(ours.output, theirs.output, "output", rel)
    assert len(ours.state) == len(theirs.state)
    for k, (a, b) in enumerate(zip(ours.state, theirs.state)):
        assert_close(a, b, ["h_n", "c_n"][k], rel)
    assert_close(ours.grad_input, theirs.grad_input, "grad_input", rel)
    assert len(ours.grad_hx) == len(theirs.grad_hx)
    for k, (a, b) in enumerate(zip(ours.grad_hx, theirs.grad_hx)):
        assert_close(a, b, ["grad_h0", "grad_c0"][k], rel)
    assert list(ours.param_grads) == list(theirs.param_grads)
    for name in theirs.param_grads:
        assert_close(ours.param_grads[name], theirs.param_grads[name], f"grad of {name}", rel)


# -- finite differences ---------------------------------------------------------------------
def numerical_gradient(loss_fn, array: np.ndarray, eps: float = FD_EPS) -> np.ndarray:
    """parity.diff's central differences, at the tests' step (modules of many parameters)."""
    return _central_differences(loss_fn, array, eps)


def assert_matches_fd(analytic, loss_fn, array: np.ndarray, name: str) -> None:
    assert analytic is not None, f"{name}: no analytic gradient"
    assert_close(analytic, numerical_gradient(loss_fn, array), f"{name} (vs finite differences)",
                 FD_REL)


def check_module_against_fd(module, data: Data, dropout_masks=None) -> None:
    """Every parameter's, the input's and hx's gradient against central differences."""
    ours = run_scratch(module, data, dropout_masks)

    def loss():
        output, state = module.forward(data.x, data.hx, data.lengths,
                                       dropout_masks=dropout_masks)
        return weighted_sum(output, state, data)

    for name, param in module.named_parameters():
        assert_matches_fd(ours.param_grads[name], loss, param, f"grad of {name}")
    assert_matches_fd(ours.grad_input, loss, data.x, "grad_input")
    hx_parts = as_list(data.hx)
    assert len(ours.grad_hx) == len(hx_parts)
    for k, (grad, part) in enumerate(zip(ours.grad_hx, hx_parts)):
        assert_matches_fd(grad, loss, part, ["grad_h0", "grad_c0"][k])


# -- Hypothesis strategy of cases -------------------------------------------------------------
def cases(modes=MODES, max_layers: int = 3, max_T: int = 5):
    """A strategy of small layer Cases (parity.case.Case) covering every option together,
    for one of the modes."""
    from hypothesis import strategies as st

    @st.composite
    def draw_case(draw) -> Case:
        mode = draw(st.sampled_from(modes), label="mode")
        hidden_size = draw(st.integers(1, 4), label="hidden_size")
        proj_size = 0
        if mode == "LSTM" and hidden_size > 1:
            proj_size = draw(st.integers(0, hidden_size - 1), label="proj_size")
        seq_len = draw(st.integers(1, max_T), label="seq_len")
        batched = draw(st.booleans(), label="batched")
        batch = draw(st.integers(1, 3), label="batch") if batched else 1
        lengths = None
        if batched and draw(st.booleans(), label="use lengths"):
            lengths = tuple(draw(st.lists(st.integers(1, seq_len), min_size=batch,
                                          max_size=batch), label="lengths"))
        return Case(
            mode=mode,
            num_layers=draw(st.integers(1, max_layers), label="num_layers"),
            bidirectional=draw(st.booleans(), label="bidirectional"),
            batch_first=draw(st.booleans(), label="batch_first"),
            bias=draw(st.booleans(), label="bias"),
            proj_size=proj_size,
            lengths=lengths,
            hx=draw(st.booleans(), label="hx"),
            unbatched=not batched,
            seq_len=seq_len,
            batch=batch,
            input_size=draw(st.integers(1, 3), label="input_size"),
            hidden_size=hidden_size,
        )

    return draw_case()
