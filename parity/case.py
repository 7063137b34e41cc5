"""The cases: a configuration in words, and the arrays it is run on. One class a level:
``FunctionCase`` for one cell's step and the loop over time, ``Case`` for a whole layer.

A ``Case`` is plain data (JSON in, JSON out), so that a failure is reproduced exactly by its
JSON alone: every array of the case (weights, biases, initial states, input, upstream
gradients, dropout masks) is drawn from NumPy's generator seeded with ``case.seed``, in
float64, every element independently and non-zero, then cast to the case's dtype. The one
exception is asked for by name: ``zero_input_steps`` sets whole input rows to exactly zero.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from parity.spec import ALL_MODES, MODES, ItemSpec

# the values of Case.state_grad and Case.dropout_mode, and how describe() words them
STATE_GRAD_WORDS = {"none": "no gradient into the final state", "h": "gradient into h_n",
                    "c": "gradient into c_n only", "both": "gradient into h_n and c_n"}
DROPOUT_WORDS = {"eval": "eval mode (dropout={p} not applied)",
                 "train_p0": "train mode, dropout 0", "train_p1": "train mode, dropout 1",
                 "train_masks": "train mode, explicit dropout masks (p={p})"}
STATE_GRADS, DROPOUT_MODES = tuple(STATE_GRAD_WORDS), tuple(DROPOUT_WORDS)


@dataclass(frozen=True)
class Case:
    """Everything that decides a parity case.

    dropout_mode: "eval" (eval mode, dropout p set but not applied), "train_p0" (train mode,
    p = 0), "train_p1" (train mode, p = 1: zeros into every layer after the first), or
    "train_masks" (train mode with explicit masks of probability p, checked against
    torch_impl.equations since torch.nn cannot take masks).
    state_grad: which final states get an upstream gradient ("c" and "both" for LSTM only).
    zero_input_steps: time steps whose input rows are exactly zero in every sequence. With
    no bias and no hx, the steps a direction runs before its first non-zero row have a
    pre-activation of exactly zero (the place where relu'(0) = 0 is decided).
    """

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    proj_size: int = 0
    bidirectional: bool = False
    batch_first: bool = False
    bias: bool = True
    unbatched: bool = False
    seq_len: int = 3
    batch: int = 2
    lengths: tuple[int, ...] | None = None
    zero_input_steps: tuple[int, ...] = ()
    hx: bool = True
    state_grad: str = "h"
    dropout_mode: str = "eval"
    dropout: float = 0.0
    dtype: str = "float64"
    device: str = "cpu"
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse a case that is no parity case, naming every problem."""
        p = []
        if self.mode not in ALL_MODES:
            p.append(f"mode must be one of {ALL_MODES}, got {self.mode!r}")
        for name in ("input_size", "hidden_size", "num_layers", "seq_len", "batch"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.proj_size and (self.mode != "LSTM" or not 0 < self.proj_size < self.hidden_size):
            p.append(f"proj_size {self.proj_size} needs LSTM and 0 < proj_size < hidden_size")
        if self.unbatched and self.batch != 1:
            p.append(f"unbatched input has batch 1, got batch={self.batch}")
        if self.lengths is not None:
            if self.unbatched:
                p.append("lengths need batched input")
            if len(self.lengths) != self.batch or not all(
                1 <= n <= self.seq_len for n in self.lengths
            ):
                p.append(f"lengths must be {self.batch} ints in 1..{self.seq_len}, "
                         f"got {self.lengths}")
        steps = self.zero_input_steps
        if list(steps) != sorted(set(steps)) or not all(0 <= t < self.seq_len for t in steps):
            p.append(f"zero_input_steps must be increasing steps in 0..{self.seq_len - 1}, "
                     f"got {steps}")
        allowed = STATE_GRADS if self.mode == "LSTM" else ("none", "h")
        if self.state_grad not in allowed:
            p.append(f"state_grad must be one of {allowed} for {self.mode}, "
                     f"got {self.state_grad!r}")
        if self.dropout_mode not in DROPOUT_MODES:
            p.append(f"dropout_mode must be one of {DROPOUT_MODES}, got {self.dropout_mode!r}")
        if self.dropout_mode == "train_p0" and self.dropout != 0.0:
            p.append("train_p0 needs dropout 0")
        if self.dropout_mode == "train_p1" and self.dropout != 1.0:
            p.append("train_p1 needs dropout 1")
        if self.dropout_mode == "train_masks" and (
            self.num_layers < 2 or not 0.0 < self.dropout < 1.0
        ):
            p.append("train_masks needs num_layers >= 2 and 0 < dropout < 1")
        if self.dtype not in ("float32", "float64"):
            p.append(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.device not in ("cpu", "cuda"):
            p.append(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if p:
            raise ValueError(f"invalid parity case {self.to_json()}: " + "; ".join(p))

    # -- derived facts ----------------------------------------------------------------------
    @property
    def training(self) -> bool:
        return self.dropout_mode != "eval"

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def h_out(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    # -- words and JSON ---------------------------------------------------------------------
    def describe(self) -> str:
        """The configuration in words."""
        parts = [f"{MODES[self.mode].words}, input_size {self.input_size}, "
                 f"hidden_size {self.hidden_size}"]
        if self.proj_size:
            parts.append(f"proj_size {self.proj_size}")
        parts.append(f"{self.num_layers} layer{'s' if self.num_layers > 1 else ''}")
        parts.append("bidirectional" if self.bidirectional else "one direction")
        if not self.bias:
            parts.append("no bias")
        if self.unbatched:
            parts.append(f"unbatched input of {self.seq_len} steps")
        else:
            layout = "batch_first" if self.batch_first else "time-major"
            parts.append(f"{layout} input, T={self.seq_len}, B={self.batch}")
        if self.lengths is not None:
            parts.append(f"lengths {list(self.lengths)}")
        if self.zero_input_steps:
            parts.append(f"input exactly zero at steps {list(self.zero_input_steps)}")
        state = "(h0, c0)" if self.mode == "LSTM" else "h0"
        parts.append(f"{state} given" if self.hx else f"no {state}")
        parts.append(STATE_GRAD_WORDS[self.state_grad])
        parts.append(DROPOUT_WORDS[self.dropout_mode].format(p=self.dropout))
        parts.append(f"{self.dtype} on {self.device}, seed {self.seed}")
        return ", ".join(parts)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Case:
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"a case must be a JSON object, could not parse {text!r}: "
                             f"{error}") from None
        if not isinstance(fields, dict):
            raise ValueError(f"a case must be a JSON object, got {text!r}")
        if "kind" in fields:  # the field's former name, in older failure reports
            fields.setdefault("mode", fields.pop("kind"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown case fields {unknown}; known: {sorted(known)}")
        if fields.get("lengths") is not None:
            fields["lengths"] = tuple(fields["lengths"])
        if "zero_input_steps" in fields:
            fields["zero_input_steps"] = tuple(fields["zero_input_steps"])
        return cls(**fields)


class CaseData(NamedTuple):
    """The arrays of a case, in the user's layout and the case's dtype (NumPy)."""

    params: dict[str, np.ndarray]  # torch's state-dict keys, in torch's order
    input: np.ndarray
    h0: np.ndarray | None
    c0: np.ndarray | None
    grad_output: np.ndarray
    grad_h_n: np.ndarray | None
    grad_c_n: np.ndarray | None
    masks: list[np.ndarray] | None


def param_shapes(case: Case) -> dict[str, tuple[int, ...]]:
    """torch's parameter names and shapes, in torch's order (scratch.recurrent registers them
    alike): l0 (weight_ih, weight_hh, bias_ih, bias_hh, weight_hr), l0_reverse, l1, ..."""
    GH, H_out = MODES[case.mode].gates * case.hidden_size, case.h_out
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(case.num_layers):
        for direction in range(case.num_directions):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            width = case.input_size if layer == 0 else case.num_directions * H_out
            shapes[f"weight_ih{sfx}"] = (GH, width)
            shapes[f"weight_hh{sfx}"] = (GH, H_out)
            if case.bias:
                shapes[f"bias_ih{sfx}"] = shapes[f"bias_hh{sfx}"] = (GH,)
            if case.proj_size:
                shapes[f"weight_hr{sfx}"] = (case.proj_size, case.hidden_size)
    return shapes


def output_shape(case: Case) -> tuple[int, ...]:
    width = case.num_directions * case.h_out
    if case.unbatched:
        return (case.seq_len, width)
    if case.batch_first:
        return (case.batch, case.seq_len, width)
    return (case.seq_len, case.batch, width)


def state_shape(case: Case, width: int) -> tuple[int, ...]:
    rows = case.num_layers * case.num_directions
    return (rows, width) if case.unbatched else (rows, case.batch, width)


def make_data(case: Case) -> CaseData:
    """Every array of the case, as the module docstring says: weights and biases from torch's
    init, U(-1/sqrt(H), 1/sqrt(H)) (scaled to keep relu gradients finite), inputs, states and
    upstream gradients from N(0, 1); no two elements tied to each other."""
    rng = np.random.default_rng(case.seed)
    dtype = case.np_dtype
    bound = 1.0 / np.sqrt(case.hidden_size)

    def uniform(shape):
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    def normal(shape):
        return rng.standard_normal(shape).astype(dtype)

    params = {name: uniform(shape) for name, shape in param_shapes(case).items()}
    x = normal(output_shape(case)[:-1] + (case.input_size,))
    steps = list(case.zero_input_steps)  # drawn, then zeroed: the other arrays stay the same
    if case.batch_first and not case.unbatched:
        x[:, steps] = 0.0  # (B, T, I)
    else:
        x[steps] = 0.0  # (T, B, I) or (T, I)
    h_shape, c_shape = state_shape(case, case.h_out), state_shape(case, case.hidden_size)
    h0 = normal(h_shape) if case.hx else None
    c0 = normal(c_shape) if case.hx and case.mode == "LSTM" else None
    grad_output = normal(output_shape(case))
    grad_h_n = normal(h_shape) if case.state_grad in ("h", "both") else None
    grad_c_n = normal(c_shape) if case.state_grad in ("c", "both") else None  # LSTM only
    masks = None
    if case.dropout_mode == "train_masks":
        p = case.dropout
        masks = [
            ((rng.random(output_shape(case)) >= p) / (1.0 - p)).astype(dtype)
            for _ in range(case.num_layers - 1)
        ]
    return CaseData(params, x, h0, c0, grad_output, grad_h_n, grad_c_n, masks)


# -- one cell, one direction ----------------------------------------------------------------
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
        parts = [MODES[self.mode].words]
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
    """The arrays of the one-layer, one-direction Case of the same sizes and seed (make_data's
    draws, so its promises hold), with the layer and the direction taken out."""
    layer = Case(case.mode, case.I, case.H, proj_size=case.P, bias=case.bias, seq_len=case.T,
                 batch=case.B, lengths=case.lengths, seed=case.seed,
                 state_grad="both" if case.mode == "LSTM" else "h")
    d = make_data(layer)
    p = d.params
    c0, dc_n = (None, None) if d.c0 is None else (d.c0[0], d.grad_c_n[0])
    valid = None
    if case.lengths is not None:
        valid = (np.arange(case.T)[:, None] < np.asarray(case.lengths)[None, :])[:, :, None]
    return FunctionData(p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"),
                        p.get("bias_hh_l0"), p.get("weight_hr_l0"), d.input, d.h0[0], c0,
                        d.grad_output, d.grad_h_n[0], dc_n, valid)


# -- drawing cases ------------------------------------------------------------------------------
PUBLIC_SEED = 20240917  # the cases every grading runs first and the student's check runs
SEED_RANGE = 2**16


class PublicDraws(NamedTuple):
    """The choices of one public case. ``how`` is "small" (the smallest sizes, the simplest
    values), "next" (the next larger sizes) or "drawn" (sizes from the upper half of each
    range); a value the builder fixes for ``how`` (``**fixed``) is taken, the rest is drawn
    from ``rng``. The grader's strategy (``parity.grading.cases``) answers the same calls."""

    rng: np.random.Generator
    how: str

    def size(self, label: str, low: int, high: int) -> int:
        if self.how == "small":
            return low
        if self.how == "next":
            return min(low + 1, high)
        return int(self.rng.integers((low + high + 1) // 2, high + 1))  # the upper half

    def integer(self, label: str, low: int, high: int, **fixed: int) -> int:
        return self.choice(label, range(low, high + 1), **fixed)

    def integers(self, label: str, low: int, high: int, count: int) -> tuple[int, ...]:
        return tuple(int(n) for n in self.rng.integers(low, high + 1, size=count))

    def choice(self, label: str, options: Sequence, **fixed):
        if self.how in fixed:
            return fixed[self.how]
        return options[int(self.rng.integers(len(options)))]


def function_case(options: dict, mode: str, draw) -> FunctionCase:
    """A FunctionCase of one of an item's case options (``parity.spec.ItemSpec.cases``)."""
    low, high = options.get("T", (1, 1))
    T = draw.size("T", max(low, 2) if options.get("lengths") else low, high)
    B = draw.size("B", *options.get("B", (1, 3)))
    low, high = options.get("H", (1, 5))
    H = draw.size("hidden_size", max(low, 2) if options.get("proj") else low, high)
    lengths = None
    if options.get("lengths"):
        lengths = draw.integers("lengths", 1, T, B)
        if min(lengths) == T:  # at least one sequence shorter than T
            lengths = (T - 1,) + lengths[1:]
    reverse = options.get("reverse", False)
    return FunctionCase(
        mode, T, B, draw.size("input_size", *options.get("I", (1, 4))), H,
        P=draw.integer("proj_size", 1, H - 1, small=1) if options.get("proj") else 0,
        bias=draw.choice("bias", (False, True), small=True, next=False),
        reverse=draw.choice("reverse", (False, True)) if reverse is None else reverse,
        lengths=lengths, seed=draw.integer("seed", 0, SEED_RANGE - 1))


def layer_case(options: dict, mode: str, draw) -> Case:
    """A whole layer's Case (time-major, batched, float64 on the CPU) of one of an item's case
    options."""
    H = draw.size("hidden_size", 1, 4)
    proj = 0
    if options.get("proj", True) and mode == "LSTM" and H > 1 and draw.choice(
            "projection", (False, True), small=False, next=False, drawn=True):
        proj = draw.integer("proj_size", 1, H - 1)
    grads = ("h", "both", "c", "none") if mode == "LSTM" else ("h", "none")
    dropout = options.get("dropout", False)
    return Case(
        mode=mode, input_size=draw.size("input_size", 1, 4), hidden_size=H,
        num_layers=draw.size("num_layers", *options.get("layers", (1, 1))), proj_size=proj,
        bidirectional=options.get("bidirectional", False),
        bias=draw.choice("bias", (False, True), small=True, next=False),
        seq_len=draw.size("seq_len", 1, 4), batch=draw.size("batch", 1, 3),
        hx=draw.choice("hx", (True, False), small=True, next=False, drawn=True),
        state_grad=draw.choice("state_grad", grads, small=grads[0]),
        dropout_mode="train_masks" if dropout else "eval",
        dropout=draw.choice("dropout", (0.25, 0.5)) if dropout else 0.0,
        seed=draw.integer("seed", 0, SEED_RANGE - 1))


def draw_case(options: dict, mode: str, draw) -> Case | FunctionCase:
    make = layer_case if options["level"] == "layer" else function_case
    return make(options, mode, draw)


def case_size(case: Case | FunctionCase) -> int:
    if isinstance(case, FunctionCase):
        return case.T * case.B * (case.I + case.H)
    return case.seq_len * case.batch * case.num_layers * case.num_directions * (
        case.input_size + case.hidden_size)


def public_cases(item: ItemSpec) -> list[Case | FunctionCase]:
    """An item's public cases, smallest first: its pinned cases, then for each of its case
    options and each mode the smallest case, the next larger one (no biases, no initial
    state) and one drawn from the upper half of the sizes, all from PUBLIC_SEED."""
    rng = np.random.default_rng([PUBLIC_SEED, len(item.id), sum(map(ord, item.id))])
    found: list[Case | FunctionCase] = [Case(**pinned) for pinned in item.pinned]
    for options in item.cases:
        for mode in options.get("modes", ALL_MODES):
            for how in ("small", "next", "drawn"):
                found.append(draw_case(options, mode, PublicDraws(rng, how)))
    return sorted(dict.fromkeys(found), key=case_size)
