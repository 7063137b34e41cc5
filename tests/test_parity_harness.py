"""The parity harness itself: cases, data, tolerances, comparison, loading, the command line."""

import dataclasses
import json
import sys
import types

import numpy as np
import pytest

import parity
import scratch
from parity import cli, tolerances
from parity.case import Case, make_data, param_shapes
from parity.compare import compare_tensor, run_case
from parity.impl import ImplError, load_impl
from parity.pinned import pinned_cases
from parity.runner import OPTION_COLUMNS, Stats, case_options, run_mode
from parity.spec import ALL_MODES
from parity.strategies import PROFILES

LSTM_CASE = Case(mode="LSTM", input_size=3, hidden_size=4, num_layers=2, proj_size=2,
                 bidirectional=True, batch_first=True, seq_len=4, batch=3, lengths=(4, 1, 3),
                 state_grad="both", dropout_mode="train_masks", dropout=0.5, seed=11)


# -- cases and their data ------------------------------------------------------------------------
def test_case_json_round_trip():
    assert Case.from_json(LSTM_CASE.to_json()) == LSTM_CASE
    zeros = dataclasses.replace(LSTM_CASE, zero_input_steps=(0, 2))
    assert Case.from_json(zeros.to_json()) == zeros
    assert "input exactly zero at steps [0, 2]" in zeros.describe()


@pytest.mark.parametrize("fields, message", [
    (dict(mode="LSTMX"), "mode must be one of"),
    (dict(proj_size=4), "proj_size 4 needs LSTM"),
    (dict(lengths=(4, 5, 1)), "lengths must be 3 ints in 1..4"),
    (dict(num_layers=1), "train_masks needs num_layers >= 2"),
    (dict(dtype="float16"), "dtype must be"),
    (dict(zero_input_steps=(2, 1)), r"zero_input_steps must be increasing steps in 0\.\.3"),
    (dict(zero_input_steps=(1, 1)), "zero_input_steps must be increasing"),
    (dict(zero_input_steps=(4,)), "zero_input_steps must be increasing"),
])
def test_invalid_cases_are_refused_with_the_reason(fields, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(LSTM_CASE, **fields)


def test_from_json_names_unknown_fields():
    with pytest.raises(ValueError, match="unknown case fields"):
        Case.from_json(json.dumps({**json.loads(LSTM_CASE.to_json()), "colour": "red"}))


def test_case_data_is_random_nonzero_independent_and_repeatable():
    data = make_data(LSTM_CASE)
    again = make_data(LSTM_CASE)
    arrays = [*data.params.values(), data.input, data.h0, data.c0, data.grad_output,
              data.grad_h_n, data.grad_c_n]
    for a, b in zip(arrays, [*again.params.values(), again.input, again.h0, again.c0,
                             again.grad_output, again.grad_h_n, again.grad_c_n]):
        np.testing.assert_array_equal(a, b)
        assert np.all(a != 0)
        assert len(np.unique(a)) == a.size  # every element drawn on its own
    assert [(k, v.shape) for k, v in data.params.items()] == [*param_shapes(LSTM_CASE).items()]
    assert data.params["bias_ih_l0"].tolist() != data.params["bias_hh_l0"].tolist()
    assert set(np.unique(np.concatenate([m.ravel() for m in data.masks]))) == {0.0, 2.0}
    other = make_data(dataclasses.replace(LSTM_CASE, seed=12))
    assert not np.array_equal(other.input, data.input)


def test_case_describes_itself_in_words():
    text = LSTM_CASE.describe()
    for words in ("LSTM", "proj_size 2", "2 layers", "bidirectional", "batch_first",
                  "lengths [4, 1, 3]", "explicit dropout masks", "float64", "seed 11"):
        assert words in text


# -- tolerances ----------------------------------------------------------------------------------
def test_tolerances():
    assert tolerances.tolerance(np.float64, 1, 1) == 1e-10
    short, long = tolerances.tolerance(np.float32, 1, 1), tolerances.tolerance(np.float32, 100, 1)
    assert 1e-10 < short < long
    assert long > 1.5e-4  # the oneDNN-vs-native float32 LSTM gap at T = 100
    assert tolerances.scale(np.array([0.5, -3.0])) == 3.0
    assert tolerances.scale(np.array([0.5])) == 1.0
    with pytest.raises(TypeError, match="float32 or float64"):
        tolerances.tolerance(np.float16, 1, 1)


def test_tolerance_constants_are_pinned():
    """The numbers docs/parity.md argues for; changing one is a decision, not a side effect."""
    assert tolerances.FLOAT64_TOL == 1e-10
    assert tolerances.FLOAT32_BASE == 2e-5
    assert tolerances.FLOAT32_PER_STEP == 2e-6
    assert tolerances.TRAINING_TOL == 1e-9
    assert tolerances.tolerance(np.float32, 3, 2) == pytest.approx(3.2e-5, rel=1e-12)


class _Skewed:
    """scratch's module with ``delta`` added to one element of forward's output."""

    def __init__(self, module, delta):
        self.module, self.delta = module, delta

    def __getattr__(self, name):
        return getattr(self.module, name)

    def __call__(self, *args, **kwargs):
        output, state = self.module(*args, **kwargs)
        output = output.copy()
        output[0, 0, 0] += output.dtype.type(self.delta)
        return output, state


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-5 + 2e-6 * 3 * 2)])
@pytest.mark.parametrize("factor, passes", [(1.1, False), (0.9, True)])
def test_an_error_just_over_the_tolerance_fails_and_just_under_passes(dtype, tol, factor,
                                                                     passes):
    """tol is written out here, not read from parity.tolerances: loosening the constants
    (by 2x or anything over 10%) lets the 1.1x error through and fails this test."""
    from parity.reference import torch_outcome

    case = Case(mode="RNN_TANH", input_size=3, hidden_size=4, num_layers=2, seq_len=3,
                batch=2, dtype=dtype, seed=4)
    ref = torch_outcome(case, make_data(case))
    delta = factor * tol * tolerances.scale(ref.output.astype(np.float64))
    impl = types.SimpleNamespace(RNN=lambda *a, **k: _Skewed(scratch.RNN(*a, **k), delta),
                                 LSTM=scratch.LSTM, GRU=scratch.GRU)
    result = run_case(case, impl, "skewed")
    assert result.passed is passes, result.report()
    output = next(c for c in result.checks if c.name == "output")
    assert output.tol == pytest.approx(tol, rel=1e-12)
    assert output.error == pytest.approx(factor * tol, rel=0.01)


@pytest.mark.parametrize("factor, passes", [(1.1, False), (0.9, True)])
def test_a_training_run_just_over_the_tolerance_fails(factor, passes):
    from parity.training import CASES, RunResult

    tol = 1e-9  # written out, see above
    torch_params = {"w": np.array([[3.0, -0.5], [0.25, 1.0]])}
    losses = np.array([2.0, 1.5, 1.25])
    off = {"w": torch_params["w"] + np.array([[0.0, 0.0], [0.0, factor * tol * 3.0]])}
    params = RunResult(CASES[0], 3, losses, losses, off, torch_params, torch_params)
    assert params.passed is passes
    assert params.max_param_diff == pytest.approx(factor * tol, rel=1e-6)
    curve = RunResult(CASES[0], 3, losses + np.array([0.0, factor * tol * 2.0, 0.0]), losses,
                      torch_params, torch_params, torch_params)
    assert curve.passed is passes
    assert curve.row()["tolerance"] == tol


def test_training_tolerance_lives_in_tolerances():
    import inspect

    from parity import training

    assert training.TRAINING_TOL is tolerances.TRAINING_TOL
    assert "TRAINING_TOL =" not in inspect.getsource(training)
    # above one pass's bound (differences grow over updates), far below a wrong formula's 1e-4
    assert tolerances.FLOAT64_TOL < tolerances.TRAINING_TOL < 1e-4


# -- one tensor ----------------------------------------------------------------------------------
def test_compare_tensor_finds_and_locates_one_wrong_element():
    ref = np.random.default_rng(0).standard_normal((3, 4))
    impl = ref.copy()
    impl[2, 1] += 1e-6
    check = compare_tensor("grad[weight_hh_l0]", "grad_weight", impl, ref, 1e-10)
    assert not check.passed
    assert check.measured.index == (2, 1)
    assert check.measured.largest == pytest.approx(1e-6)
    assert "grad[weight_hh_l0]" in check.describe() and "[2, 1]" in check.describe()
    assert compare_tensor("x", "output", ref + 1e-14, ref, 1e-10).passed


@pytest.mark.parametrize("impl, problem", [
    (None, "expected an array of shape (3, 4), got None"),
    (np.zeros((4, 3)), "has shape (4, 3), expected (3, 4)"),
    (np.zeros((3, 4), dtype=np.float32), "has dtype float32, expected float64"),
    (np.full((3, 4), np.nan), "holds nan at index [0, 0] where 1 was expected"),
])
def test_compare_tensor_problems(impl, problem):
    check = compare_tensor("output", "output", impl, np.ones((3, 4)), 1e-10)
    assert not check.passed and problem in check.problem


@pytest.mark.parametrize("impl, problem", [
    ([np.nan, np.inf, 2.0], None),
    ([np.nan, -np.inf, 2.0], "at index [1] the implementation has -inf, torch inf"),
    ([0.0, np.inf, 2.0], "at index [0] the implementation has 0.0, torch nan"),
    ([np.nan, np.inf, 2.5], None),  # the finite part is off: an error, not a problem
])
def test_compare_tensor_where_torch_is_not_finite(impl, problem):
    """NaN where torch has NaN and the same infinity, else the problem; the finite elements
    are measured against their own scale (an infinity does not allow any error)."""
    check = compare_tensor("total_norm", "value", np.array(impl), np.array([np.nan, np.inf, 2.0]),
                           1e-10)
    assert check.problem == problem
    assert check.passed is (problem is None and impl[2] == 2.0)
    if check.measured is not None:
        assert check.measured.scale == 2.0
        assert check.error == pytest.approx(abs(impl[2] - 2.0) / 2.0)


def test_first_divergence_is_not_blinded_by_an_infinite_reference():
    from parity.diff import first_divergence

    found = first_divergence(np.array([np.inf, 1.0]), np.array([np.inf, 1.5]), "x")
    assert found is not None and "expected 1, got 1.5" in found.problem
    assert first_divergence(np.array([np.inf, 1.0]), np.array([np.inf, 1.0]), "x") is None


# -- the real scratch --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ALL_MODES)
def test_scratch_passes_the_quick_profile(mode):
    stats = Stats()
    outcome = run_mode(mode, "cpu", PROFILES["quick"], scratch, "scratch", stats)
    assert outcome.failure is None, outcome.failure.report()
    assert stats.cases[mode] == outcome.pinned + outcome.explored - stats.non_finite[mode]
    assert outcome.explored == PROFILES["quick"].examples


def test_pinned_cases_cover_every_option_of_every_kind():
    for mode in ALL_MODES:
        seen = {option for _, case in pinned_cases(mode) for option in case_options(case)}
        expected = set(OPTION_COLUMNS) - {"cuda"} - ({"proj"} if mode != "LSTM" else set())
        assert expected <= seen, f"{mode}: not covered {expected - seen}"


def test_a_passing_case_compares_every_tensor_and_parameter():
    result = run_case(LSTM_CASE, scratch)
    assert result.passed, result.report()
    names = {c.name for c in result.checks}
    assert {"output", "h_n", "c_n", "grad_input", "grad_h0", "grad_c0"} <= names
    for name in param_shapes(LSTM_CASE):
        assert f"grad[{name}]" in names and f"grad[{name}] after 2 backward()" in names


def test_a_wrong_hx_gradient_is_reported():
    """An implementation returning grad_hx although forward had no hx is flagged."""
    class Wrapped:
        def __init__(self, module):
            self.module = module

        def __getattr__(self, name):
            return getattr(self.module, name)

        def __call__(self, *args, **kwargs):
            return self.module(*args, **kwargs)

        def backward(self, *args):
            grad_input, _ = self.module.backward(*args)
            return grad_input, np.zeros((1, 2, 4))

    impl = types.SimpleNamespace(RNN=lambda *a, **k: Wrapped(scratch.RNN(*a, **k)),
                                 LSTM=scratch.LSTM, GRU=scratch.GRU)
    case = Case(mode="RNN_TANH", input_size=3, hidden_size=4, seq_len=2, batch=2, hx=False,
                seed=3)
    result = run_case(case, impl, "wrapped")
    assert not result.passed
    assert "grad_h0: returned, but forward() was given no hx" in result.report()


def test_a_crash_is_a_failure_with_its_place():
    def broken(*args, **kwargs):
        raise RuntimeError("not implemented")

    impl = types.SimpleNamespace(RNN=broken, LSTM=broken, GRU=broken)
    result = run_case(dataclasses.replace(LSTM_CASE), impl, "broken")
    assert not result.passed
    assert "RuntimeError: not implemented (during building the module" in result.report()


# -- loading an implementation ---------------------------------------------------------------
def test_load_impl_errors(tmp_path):
    with pytest.raises(ImplError, match="no such directory"):
        load_impl(str(tmp_path / "missing/"))
    with pytest.raises(ImplError, match="neither a scratch/ package"):
        load_impl(str(tmp_path))
    with pytest.raises(ImplError, match="cannot import it"):
        load_impl("no_such_module_anywhere")
    with pytest.raises(ImplError, match=r"has no \['RNN', 'LSTM', 'GRU'\]"):
        load_impl("json")


def test_a_copy_that_does_not_import_is_refused_and_leaves_scratch_alone(tmp_path):
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "__init__.py").write_text("from scratch.missing import RNN\n")
    with pytest.raises(ImplError, match="ModuleNotFoundError"):
        load_impl(str(tmp_path))
    assert sys.modules["scratch"] is scratch
    assert not any(k.startswith("scratch.missing") for k in sys.modules)


def test_a_copy_is_loaded_beside_the_real_scratch(tmp_path):
    import shutil

    shutil.copytree(scratch.__path__[0], tmp_path / "scratch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "scratch" / "marker.py").write_text("COPY = True\n")
    copy = load_impl(str(tmp_path))
    assert copy is not scratch and copy.LSTM is not scratch.LSTM
    assert copy.__file__.startswith(str(tmp_path))
    assert sys.modules["scratch"] is scratch
    assert "scratch.marker" not in sys.modules
    assert run_case(pinned_cases("GRU")[1][1], copy, str(tmp_path)).passed


# -- the command line ----------------------------------------------------------------------------
def test_cli_quick_run_passes_and_prints_the_summary(capsys, monkeypatch):
    monkeypatch.setattr(cli, "run_training", lambda profile, name: ([], "training: not here"))
    assert cli.main(["--profile", "quick", "--modes", "gru,rnn_relu", "--device", "cpu",
                     "--groups", "training"]) == 0
    out = capsys.readouterr().out
    for text in ("cases compared, per mode and option", "largest error seen", "GRU",
                 "RNN_RELU", "training: not here", "- cuda: ", "PASS"):
        assert text in out
    assert "LSTM " not in out.split("== per mode and device ==")[1]


def test_cli_counts_training_rows(capsys, monkeypatch):
    rows = [{"name": "sgd/rnn", "steps": 3, "max_param_diff": 0.0, "max_loss_diff": 0.0,
             "tolerance": 1e-9, "passed": True},
            {"name": "adam/gru", "steps": 3, "max_param_diff": 1.0, "max_loss_diff": 0.0,
             "tolerance": 1e-9, "passed": False}]
    fake = types.ModuleType("parity.training")
    fake.run_training_parity = lambda profile: rows
    monkeypatch.setitem(sys.modules, "parity.training", fake)
    # `import parity.training` reads the package's attribute first, once the real module
    # has been imported by an earlier test
    monkeypatch.setattr(parity, "training", fake, raising=False)
    assert cli.main(["--profile", "quick", "--modes", "rnn_tanh", "--groups", "training"]) == 1
    out = capsys.readouterr().out
    assert "adam/gru" in out and "1 training rows" in out


def test_cli_reproduce(capsys):
    assert cli.main(["--reproduce", LSTM_CASE.to_json()]) == 0
    assert "PASS" in capsys.readouterr().out
    assert cli.main(["--reproduce", "{not json"]) == 2


def test_cli_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--modes", "transformer"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --modes: unknown mode 'transformer': choose from rnn_tanh" in err
    assert cli.main(["--impl", "no_such_module_anywhere"]) == 2
    assert "cannot import it" in capsys.readouterr().err


def test_cli_reproduce_a_failing_case_prints_its_report(tmp_path, capsys):
    from parity import zoo

    path = zoo.materialize("gru_textbook", tmp_path)
    case = pinned_cases("GRU")[0][1]
    assert cli.main(["--impl", str(path), "--reproduce", case.to_json()]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL\ndiverged from torch: output, h_n")
    assert f"case: {case.describe()}" in out
    assert f"reproduce: python -m parity --impl {path} --reproduce" in out


def test_cli_device_cuda_without_cuda_is_a_usage_error(capsys, monkeypatch):
    from parity import reference

    monkeypatch.setattr(reference, "cuda_available", lambda: False)
    assert cli.main(["--device", "cuda", "--profile", "quick"]) == 2
    captured = capsys.readouterr()
    assert "error: --device cuda, but torch sees no CUDA device" in captured.err
    assert "--device cpu" in captured.err and captured.out == ""
    on_cuda = dataclasses.replace(LSTM_CASE, device="cuda")
    assert cli.main(["--reproduce", on_cuda.to_json()]) == 2
    assert "runs torch on CUDA, which this machine does not have" in capsys.readouterr().err
    # --device all without CUDA runs the CPU and lists CUDA as skipped
    monkeypatch.setattr(cli, "run_training", lambda profile, name: ([], ""))
    assert cli.main(["--profile", "quick", "--modes", "rnn_tanh", "--groups", "none"]) == 0
    out = capsys.readouterr().out
    assert "devices cpu\n" in out and "  - cuda: torch sees no CUDA device" in out


def test_the_bare_name_scratch_is_the_project_module(monkeypatch):
    monkeypatch.chdir(scratch.__path__[0] + "/..")  # where ./scratch/ is a directory too
    assert load_impl("scratch") is scratch and load_impl(None) is scratch
