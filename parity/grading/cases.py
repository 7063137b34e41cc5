"""The cases a submission is graded on: small, random, non-zero, and the same for everyone.

Two kinds of case:

* ``FunctionCase``: one cell kind's arrays for the functional layer and the sequence loop
  (a step, a cell, one direction of one layer);
* ``parity.case.Case``: a whole recurrent layer, the parity harness's own case, for the items
  that grade the layer stacking in ``scratch/recurrent.py``.

Hypothesis draws the configuration (sizes, flags, a seed); every array is then drawn from
``numpy.random.default_rng(seed)`` in float64, weights near torch's init scale and everything
else from N(0, 1), so no number is zero and no two are tied. Shrinking makes the sizes and
the seed small, never the numbers degenerate; flags are drawn so that the simplest case has
biases, an initial state and an upstream gradient into it (what hides the fewest bugs).
Grading runs Hypothesis derandomized: every submission meets the same cases, in the same
order, until one fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from parity.case import Case
from scratch import GATES

MODES = tuple(GATES)
MODE_WORDS = {"RNN_TANH": "RNN (tanh)", "RNN_RELU": "RNN (relu)", "LSTM": "LSTM", "GRU": "GRU"}


@dataclass(frozen=True)
class FunctionCase:
    """The configuration of a functional or sequence-loop case.

    mode: RNN_TANH, RNN_RELU, LSTM or GRU; T time steps (1 for a single cell), B sequences,
    I input features, H hidden units, P = proj_size (LSTM only, 0 for none), bias or not,
    reverse (the reverse direction of a layer), lengths (one per sequence) or None.
    """

    mode: str
    T: int
    B: int
    I: int
    H: int
    P: int = 0
    bias: bool = True
    reverse: bool = False
    lengths: tuple[int, ...] | None = None
    seed: int = 0

    @property
    def h_out(self) -> int:
        return self.P or self.H

    def describe(self) -> str:
        parts = [MODE_WORDS[self.mode]]
        if self.T > 1 or self.lengths is not None:
            parts.append(f"T={self.T} steps")
        parts.append(f"B={self.B}, input_size={self.I}, hidden_size={self.H}")
        if self.P:
            parts.append(f"proj_size={self.P}")
        parts.append("with biases" if self.bias else "no biases")
        if self.reverse:
            parts.append("reverse direction")
        if self.lengths is not None:
            parts.append(f"lengths={list(self.lengths)}")
        parts.append(f"seed={self.seed}")
        return ", ".join(parts)


@dataclass(frozen=True)
class FunctionData:
    """The arrays of a FunctionCase (float64). Time-major: x (T, B, I), doutput (T, B, H_out)."""

    W_ih: np.ndarray  # (G*H, I)
    W_hh: np.ndarray  # (G*H, H_out)
    b_ih: np.ndarray | None  # (G*H,)
    b_hh: np.ndarray | None  # (G*H,)
    W_hr: np.ndarray | None  # (P, H)
    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (B, H_out)
    c0: np.ndarray | None  # (B, H), LSTM only
    doutput: np.ndarray  # (T, B, H_out) upstream gradient of the outputs
    dh_n: np.ndarray  # (B, H_out) upstream gradient of the last state
    dc_n: np.ndarray | None  # (B, H), LSTM only
    valid: np.ndarray | None  # (T, B, 1) bool: t < length of the sequence

    @property
    def x_proj(self) -> np.ndarray:
        """x W_ih^T + b_ih for every step (T, B, G*H)."""
        x_proj = self.x @ self.W_ih.T
        return x_proj + self.b_ih if self.b_ih is not None else x_proj


def make_function_data(case: FunctionCase) -> FunctionData:
    rng = np.random.default_rng(case.seed)
    GH, H, H_out = GATES[case.mode] * case.H, case.H, case.h_out
    bound = 1.0 / np.sqrt(H)

    def uniform(*shape):
        return rng.uniform(-bound, bound, size=shape)

    def normal(*shape):
        return rng.standard_normal(shape)

    W_ih, W_hh = uniform(GH, case.I), uniform(GH, H_out)
    b_ih = uniform(GH) if case.bias else None
    b_hh = uniform(GH) if case.bias else None
    W_hr = uniform(case.P, H) if case.P else None
    x, h0 = normal(case.T, case.B, case.I), normal(case.B, H_out)
    c0 = normal(case.B, H) if case.mode == "LSTM" else None
    doutput, dh_n = normal(case.T, case.B, H_out), normal(case.B, H_out)
    dc_n = normal(case.B, H) if case.mode == "LSTM" else None
    valid = None
    if case.lengths is not None:
        lengths = np.asarray(case.lengths)
        valid = (np.arange(case.T)[:, None] < lengths[None, :])[:, :, None]
    return FunctionData(W_ih, W_hh, b_ih, b_hh, W_hr, x, h0, c0, doutput, dh_n, dc_n, valid)


# -- strategies --------------------------------------------------------------------------------
SEEDS = st.integers(0, 2**16 - 1)


@st.composite
def function_cases(draw, modes=MODES, *, T=(1, 1), B=(1, 3), I=(1, 4), H=(1, 5),
                   proj=False, reverse=False, lengths=False):
    """FunctionCases of the given modes. reverse: a bool, or None to draw it. lengths: draw
    lengths with at least one shorter than T."""
    mode = draw(st.sampled_from(modes), label="mode")
    hidden = draw(st.integers(max(H[0], 2) if proj else H[0], H[1]), label="hidden_size")
    steps = draw(st.integers(max(T[0], 2) if lengths else T[0], T[1]), label="T")
    batch = draw(st.integers(*B), label="B")
    case_lengths = None
    if lengths:
        case_lengths = tuple(draw(st.lists(st.integers(1, steps), min_size=batch,
                                           max_size=batch), label="lengths"))
        if min(case_lengths) == steps:  # at least one sequence shorter than T
            case_lengths = (steps - 1,) + case_lengths[1:]
    return FunctionCase(
        mode=mode, T=steps, B=batch, I=draw(st.integers(*I), label="input_size"), H=hidden,
        P=draw(st.integers(1, hidden - 1), label="proj_size") if proj else 0,
        bias=not draw(st.booleans(), label="no bias"),
        reverse=draw(st.booleans(), label="reverse") if reverse is None else reverse,
        lengths=case_lengths, seed=draw(SEEDS, label="seed"),
    )


@st.composite
def layer_cases(draw, *, layers=(1, 1), bidirectional=False, dropout=False, proj=True):
    """parity Cases of whole layers: time-major, batched, float64 on the CPU."""
    kind = draw(st.sampled_from(MODES), label="kind")
    hidden = draw(st.integers(1, 4), label="hidden_size")
    proj_size = 0
    if proj and kind == "LSTM" and hidden > 1 and draw(st.booleans(), label="projection"):
        proj_size = draw(st.integers(1, hidden - 1), label="proj_size")
    state_grads = ("h", "both", "c", "none") if kind == "LSTM" else ("h", "none")
    return Case(
        kind=kind, input_size=draw(st.integers(1, 4), label="input_size"), hidden_size=hidden,
        num_layers=draw(st.integers(*layers), label="num_layers"), proj_size=proj_size,
        bidirectional=bidirectional, bias=not draw(st.booleans(), label="no bias"),
        seq_len=draw(st.integers(1, 4), label="seq_len"),
        batch=draw(st.integers(1, 3), label="batch"),
        hx=not draw(st.booleans(), label="no hx"),
        state_grad=draw(st.sampled_from(state_grads), label="state_grad"),
        dropout_mode="train_masks" if dropout else "eval",
        dropout=draw(st.sampled_from((0.25, 0.5)), label="dropout") if dropout else 0.0,
        seed=draw(SEEDS, label="seed"),
    )
