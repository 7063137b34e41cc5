"""relu'(0): the pinned cases with pre-activations of exactly zero, and the zoo member that
differs from torch there and nowhere else.

Drawn data never puts an exact zero in a pre-activation, so a relu derivative of 1 at zero
(instead of torch's 0) passes every drawn case. The pinned scenarios named "pre-activation
exactly 0" start a direction on input rows of exactly zero with no bias and no hx.
"""

import dataclasses

import numpy as np
import pytest
import torch

import scratch
from parity import cli, zoo
from parity.case import make_data
from parity.compare import run_case
from parity.impl import build_impl, load_impl
from parity.pinned import pinned_cases
from parity.reference import torch_outcome
from parity.spec import ALL_MODES

MUTANT = "relu_grad_one_at_zero"


def zero_cases(mode):
    """The pinned cases with exact zero input rows (never none: every loop over them runs)."""
    found = [(name, case) for name, case in pinned_cases(mode) if case.zero_input_steps]
    assert len(found) >= 3, f"{mode}: the pinned zero-input cases are gone"
    return found


def leading_zero_steps(case):
    """The zero rows the forward direction starts on: its pre-activation is 0 there."""
    steps = []
    for t in case.zero_input_steps:
        if t != len(steps):
            break
        steps.append(t)
    return steps


def time_major(array, case):
    """(T, ...) view of an input- or output-shaped array of the case."""
    if case.unbatched or not case.batch_first:
        return array
    return np.swapaxes(array, 0, 1)


@pytest.fixture(scope="module")
def mutant_dir(tmp_path_factory):
    return zoo.materialize(MUTANT, tmp_path_factory.mktemp("zoo"))


def test_there_are_zero_cases_one_and_two_directions_and_both_dtypes():
    cases = [case for _, case in zero_cases("RNN_RELU")]
    assert len(cases) >= 3
    assert {c.bidirectional for c in cases} == {False, True}
    assert {c.dtype for c in cases} == {"float32", "float64"}
    assert any(c.num_layers > 1 for c in cases)
    for case in cases:
        assert not case.bias and not case.hx and leading_zero_steps(case)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_the_zero_rows_are_exactly_zero_and_the_rest_unchanged(mode):
    for _, case in zero_cases(mode):
        data = make_data(case)
        x = time_major(data.input, case)
        assert np.all(x[list(case.zero_input_steps)] == 0)
        others = [t for t in range(case.seq_len) if t not in case.zero_input_steps]
        assert np.all(x[others] != 0)
        plain = make_data(dataclasses.replace(case, zero_input_steps=()))
        np.testing.assert_array_equal(time_major(plain.input, case)[others], x[others])
        np.testing.assert_array_equal(plain.grad_output, data.grad_output)
        for name, value in plain.params.items():
            np.testing.assert_array_equal(value, data.params[name])


@pytest.mark.parametrize("mode", ALL_MODES)
def test_every_layer_sees_pre_activation_zero_on_the_leading_zero_rows(mode):
    """Both sides output exactly 0 on those steps, in the top layer too. For tanh this proves
    the top layer's pre-activation is exactly 0 (tanh(p) == 0 only for p == 0), and with it
    its input there, the layer below's output."""
    for name, case in zero_cases(mode):
        data = make_data(case)
        steps = leading_zero_steps(case)
        assert steps, name
        forward_half = slice(0, case.h_out)  # the forward direction's part of the output
        ref = torch_outcome(case, data)
        assert np.all(time_major(ref.output, case)[steps][..., forward_half] == 0), name
        lengths = {} if case.lengths is None else {"lengths": list(case.lengths)}
        mine, _ = build_impl(case, data, scratch)(data.input.copy(), None, **lengths)
        assert np.all(time_major(mine, case)[steps][..., forward_half] == 0), name


def test_torch_takes_relu_grad_zero_at_zero():
    """Checked, not assumed: torch.relu's gradient at 0 (and -0) is 0, and torch.nn.RNN
    passes no gradient to the input rows a one-direction layer starts on (pre-activation
    exactly zero there, in every layer)."""
    for dtype in (torch.float64, torch.float32):
        z = torch.tensor([0.0, -0.0, 1e-30, -1e-30], dtype=dtype, requires_grad=True)
        torch.relu(z).backward(torch.ones_like(z))
        assert z.grad.tolist() == [0.0, 0.0, 1.0, 0.0]
    one_direction = [(n, c) for n, c in zero_cases("RNN_RELU") if not c.bidirectional]
    assert one_direction
    for name, case in one_direction:
        ref = torch_outcome(case, make_data(case))
        grad_input = time_major(ref.grad_input, case)
        steps = leading_zero_steps(case)
        assert steps, name
        assert np.all(grad_input[steps] == 0), name
        assert np.any(grad_input[steps[-1] + 1 :] != 0), name


@pytest.mark.parametrize("mode", ALL_MODES)
def test_scratch_passes_the_zero_cases(mode):
    for name, case in zero_cases(mode):
        result = run_case(case, scratch)
        assert result.passed, f"{name}:\n{result.report()}"


def test_the_mutant_differs_only_where_a_pre_activation_is_zero(mutant_dir):
    impl = load_impl(str(mutant_dir))
    seen = {"passed": 0, "failed": 0}
    for name, case in pinned_cases("RNN_RELU"):
        result = run_case(case, impl, str(mutant_dir))
        if not case.zero_input_steps:
            assert result.passed, f"{name}:\n{result.report()}"
            seen["passed"] += 1
            continue
        seen["failed"] += 1
        assert not result.passed, name
        assert [c.name for c in result.failures] == ["grad_input"], result.report()
        check = result.failures[0]
        assert check.relative[0] == np.inf  # somewhere torch has exactly 0 and the mutant not
    assert seen["passed"] >= 5 and seen["failed"] == len(zero_cases("RNN_RELU")), seen


def test_the_ci_profile_flags_the_mutant(mutant_dir, capsys):
    code = cli.main(["--impl", str(mutant_dir), "--profile", "ci", "--modes", "rnn_relu",
                     "--device", "cpu", "--groups", "none"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL: RNN_RELU on cpu, found by pinned case 'pre-activation exactly 0" in out
    assert "diverged from torch: grad_input" in out
