"""The examples run (with a few steps), write their PNG, and show what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close

from examples import char_lm, gradient_flow, sequence_regression
from parity.training import TRAINING_TOL

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 10_000, "suspiciously small picture"


def test_sequence_regression_runs_and_both_sides_agree(tmp_path):
    out = tmp_path / "seq.png"
    result = sequence_regression.main(["--steps", "5", "--out", str(out), "--seed", "3"])
    assert_png(out)
    assert len(result["losses"]) == len(result["losses_torch"]) == 5
    assert_close(np.array(result["losses"]), np.array(result["losses_torch"]), "losses",
                 TRAINING_TOL)
    assert result["param_diff"] <= TRAINING_TOL


def test_char_lm_runs_samples_agree_and_text_has_a_source(tmp_path):
    out = tmp_path / "lm.png"
    result = char_lm.main(["--steps", "4", "--sample-every", "2", "--out", str(out)])
    assert_png(out)
    assert len(result["losses"]) == 4
    assert_close(np.array(result["losses"]), np.array(result["losses_torch"]), "losses",
                 TRAINING_TOL)
    ours, theirs = result["samples"]
    assert ours == theirs and ours.startswith(char_lm.PROMPT) and len(ours) > 100
    header = char_lm.TEXT.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("#") and "Lewis Carroll" in header and "Public domain" in header
    text = char_lm.load_text()
    assert len(text) > 3000 and not text.startswith("#")


def test_gradient_flow_matches_the_modules_backward_and_shows_both_regimes(tmp_path):
    rng = np.random.default_rng(0)
    T = 12
    x = rng.standard_normal((T, gradient_flow.BATCH, gradient_flow.INPUT))
    w = rng.standard_normal(gradient_flow.HIDDEN)
    for mode in ("RNN_TANH", "LSTM", "GRU"):
        layer = gradient_flow.make_layer(mode, 2.0, seed=1)
        norms = gradient_flow.grad_norms_by_distance(layer, x, w)
        # the step-by-step loop's last gradient is dL/dh_0, which the module's backward returns
        B, H = gradient_flow.BATCH, gradient_flow.HIDDEN
        h0 = np.zeros((1, B, H))
        hx = (h0, np.zeros((1, B, H))) if mode == "LSTM" else h0
        output, _ = layer(x, hx)
        dh_n = np.broadcast_to(w, (1, B, H)).copy()
        _, grad_hx = layer.backward(np.zeros_like(output), (dh_n, None) if mode == "LSTM"
                                    else dh_n)
        dh0 = grad_hx[0] if mode == "LSTM" else grad_hx
        assert_close(norms[-1], np.linalg.norm(dh0[0], axis=1), f"{mode} ||dL/dh_0||")

    out = tmp_path / "gf.png"
    result = gradient_flow.main(["--steps", "30", "--out", str(out)])
    assert_png(out)
    medians = result["medians"]
    assert medians[("RNN_TANH", 0.5)][-1] < 1e-6  # vanishing
    assert medians[("RNN_RELU", 4.0)][-1] > 1e6  # exploding
    forget_open = medians[("LSTM", "1, forget bias +3")][-1]
    assert forget_open > 1e3 * medians[("LSTM", 1.0)][-1]


def test_examples_run_as_modules(tmp_path):
    out = tmp_path / "gf_module.png"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "examples.gradient_flow", "--steps", "5",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_png(out)


def test_examples_refuse_a_bad_step_count(capsys):
    with pytest.raises(SystemExit) as exit_info:
        char_lm.main(["--steps", "0"])
    assert exit_info.value.code == 2
    assert "--steps must be at least 1, got 0" in capsys.readouterr().err
