"""Whole training runs, scratch against torch (float64): parity/training.py's ci profile.

Each case trains both sides for N >= 100 updates from the same weights on the same data; the
final parameters and the loss curves must agree within TRAINING_TOL. The tests also check
that each run really trained (the loss fell, the weights moved), that clipping really clipped,
and that the comparison catches small formula mistakes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import scratch
import scratch.tbptt
from parity import training
from parity.training import CASES, TRAINING_TOL, run_case, run_scratch, setup

ROW_KEYS = {"name", "steps", "max_param_diff", "max_loss_diff", "tolerance", "passed"}


@pytest.fixture(scope="module")
def results():
    return {case.name: run_case(case, "ci") for case in CASES}


def test_the_cases_cover_what_must_be_shown():
    options = [(c.optimizer, frozenset(c.options)) for c in CASES]
    assert ("sgd", frozenset({"lr"})) in options  # plain SGD
    assert any(o == "sgd" and "nesterov" in keys for o, keys in options)
    assert any(o == "sgd" and "momentum" in keys and "nesterov" not in keys for o, keys in options)
    assert any(o == "sgd" and "weight_decay" in keys for o, keys in options)
    assert {"adam", "adamw"} <= {c.optimizer for c in CASES}
    assert any(c.max_norm for c in CASES) and any(c.clip_value for c in CASES)
    assert {c.cell for c in CASES if c.model == "simple_rnn"} == {"rnn", "lstm", "gru"}
    assert any(c.model == "char_lm" for c in CASES)
    assert any(c.tbptt and c.model == "simple_rnn" for c in CASES)
    assert any(c.tbptt and c.model == "char_lm" for c in CASES)


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_training_run_matches_torch(results, name):
    result = results[name]
    assert result.steps >= 100
    assert len(result.torch_losses) == result.steps
    assert result.max_param_diff <= TRAINING_TOL, f"parameters differ by {result.max_param_diff}"
    assert result.max_loss_diff <= TRAINING_TOL, f"losses differ by {result.max_loss_diff}"
    assert result.passed


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_training_run_really_trains(results, name):
    losses = results[name].scratch_losses
    assert np.all(np.isfinite(losses))
    assert losses[-20:].mean() < 0.95 * losses[:20].mean(), "the loss did not fall"
    moved = max(np.max(np.abs(results[name].scratch_params[k] - v))
                for k, v in results[name].initial_params.items())
    assert moved > 0.1, "the weights hardly moved: the comparison would prove little"


@pytest.mark.parametrize("case", [c for c in CASES if c.max_norm or c.clip_value],
                         ids=lambda c: c.name)
def test_clipping_was_active(results, case):
    """The same run without clipping is a different run: the clipping cases really clip."""
    unclipped = dataclasses.replace(case, max_norm=None, clip_value=None)  # same name, same data
    data, model = setup(unclipped, "ci")
    losses = run_scratch(unclipped, model, data)
    assert np.max(np.abs(losses - results[case.name].scratch_losses)) > 1e-3


class EpsInsideSqrt(scratch.Adam):
    """A classic slip: p -= lr_t * m / sqrt(v_hat + eps) instead of sqrt(v_hat) + eps."""

    def _update(self, p, g, state):
        if not state:
            state.update(step=0, m=np.zeros_like(p), v=np.zeros_like(p))
        state["step"] += 1
        t, m, v = state["step"], state["m"], state["v"]
        m += (1 - self.beta1) * (g - m)
        v *= self.beta2
        v += (1 - self.beta2) * (g * g)
        v_hat = v / (1 - self.beta2**t)
        p -= self.lr / (1 - self.beta1**t) * m / np.sqrt(v_hat + self.eps)


class MomentumFromZero(scratch.SGD):
    """Another: a momentum buffer started at zero, so that the first step is (1 - dampening) g
    instead of g (the same when dampening is 0: the case needs a dampening)."""

    def _update(self, p, g, state):
        state.setdefault("momentum_buffer", np.zeros_like(p))
        super()._update(p, g, state)


@pytest.mark.parametrize("case_name, optimizer, mutant", [
    ("adam/lstm_classification", "adam", EpsInsideSqrt),
    ("sgd_weight_decay_dampening/rnn_relu", "sgd", MomentumFromZero),
])
def test_the_comparison_catches_a_wrong_optimizer(monkeypatch, case_name, optimizer, mutant):
    monkeypatch.setitem(training.SCRATCH_OPTIMIZERS, optimizer, mutant)
    case = next(c for c in CASES if c.name == case_name)
    result = run_case(case, "ci")
    assert not result.passed
    assert result.max_param_diff > 1e3 * TRAINING_TOL


def test_the_comparison_catches_clipping_without_its_epsilon(monkeypatch):
    """clip_coef = max_norm / total_norm (no + 1e-6) moves the run by far more than 1e-9."""

    def clip_without_eps(module, max_norm, norm_type=2.0):
        grads = [g for _, g in module.named_grads()]
        total = float(np.sqrt(sum(np.sum(g * g) for g in grads)))
        for g in grads:
            g *= min(max_norm / total, 1.0)
        return total

    monkeypatch.setattr(scratch.tbptt, "clip_grad_norm_", clip_without_eps)
    case = next(c for c in CASES if c.name == "clip_norm/lstm")
    assert not run_case(case, "ci").passed


def test_run_training_parity_rows():
    rows = training.run_training_parity("ci")
    assert [r["name"] for r in rows] == [c.name for c in CASES]
    for row in rows:
        assert set(row) == ROW_KEYS
        assert row["steps"] >= 100 and row["tolerance"] == TRAINING_TOL
        assert row["passed"] is True
        assert 0.0 <= row["max_param_diff"] <= TRAINING_TOL
    with pytest.raises(ValueError, match=r"profile must be one of \['ci', 'quick', 'thorough'\]"):
        training.run_training_parity("nightly")
