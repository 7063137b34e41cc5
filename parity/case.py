"""One parity case: a configuration in words, and the arrays it is run on.

A ``Case`` is plain data (JSON in, JSON out), so that a failure is reproduced exactly by its
JSON alone: every array of the case (weights, biases, initial states, input, upstream
gradients, dropout masks) is drawn from NumPy's generator seeded with ``case.seed``, in
float64, every element independently and non-zero, then cast to the case's dtype. The one
exception is asked for by name: ``zero_input_steps`` sets whole input rows to exactly zero.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from scratch import GATES

KINDS = tuple(GATES)
DROPOUT_MODES = ("eval", "train_p0", "train_p1", "train_masks")
STATE_GRADS = ("none", "h", "c", "both")


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

    kind: str
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
        problems = self.problems()
        if problems:
            raise ValueError(f"invalid parity case {self.to_json()}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        p = []
        if self.kind not in KINDS:
            p.append(f"kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("input_size", "hidden_size", "num_layers", "seq_len", "batch"):
            if getattr(self, name) < 1:
                p.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.proj_size and (self.kind != "LSTM" or not 0 < self.proj_size < self.hidden_size):
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
        allowed = STATE_GRADS if self.kind == "LSTM" else ("none", "h")
        if self.state_grad not in allowed:
            p.append(f"state_grad must be one of {allowed} for {self.kind}, "
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
        return p

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

    def grad_h_given(self) -> bool:
        return self.state_grad in ("h", "both")

    def grad_c_given(self) -> bool:
        return self.kind == "LSTM" and self.state_grad in ("c", "both")

    # -- words and JSON ---------------------------------------------------------------------
    def describe(self) -> str:
        """The configuration in words."""
        kind = {"RNN_TANH": "RNN (tanh)", "RNN_RELU": "RNN (relu)"}.get(self.kind, self.kind)
        parts = [f"{kind}, input_size {self.input_size}, hidden_size {self.hidden_size}"]
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
        state = "(h0, c0)" if self.kind == "LSTM" else "h0"
        parts.append(f"{state} given" if self.hx else f"no {state}")
        parts.append({
            "none": "no gradient into the final state",
            "h": "gradient into h_n",
            "c": "gradient into c_n only",
            "both": "gradient into h_n and c_n",
        }[self.state_grad])
        parts.append({
            "eval": f"eval mode (dropout={self.dropout} not applied)",
            "train_p0": "train mode, dropout 0",
            "train_p1": "train mode, dropout 1",
            "train_masks": f"train mode, explicit dropout masks (p={self.dropout})",
        }[self.dropout_mode])
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


def param_names(case: Case) -> list[str]:
    """torch's parameter names in torch's order: l0 (w_ih, w_hh, b_ih, b_hh, w_hr), l0_reverse,
    l1, ..."""
    names = []
    for layer in range(case.num_layers):
        for direction in range(case.num_directions):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            names += [f"weight_ih{sfx}", f"weight_hh{sfx}"]
            if case.bias:
                names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
            if case.proj_size:
                names.append(f"weight_hr{sfx}")
    return names


def param_shape(case: Case, name: str) -> tuple[int, ...]:
    GH = GATES[case.kind] * case.hidden_size
    layer = int(name.split("_l")[1].split("_")[0])
    if name.startswith("weight_ih"):
        width = case.input_size if layer == 0 else case.num_directions * case.h_out
        return (GH, width)
    if name.startswith("weight_hh"):
        return (GH, case.h_out)
    if name.startswith("weight_hr"):
        return (case.proj_size, case.hidden_size)
    return (GH,)


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
    """Draw every array of the case from ``default_rng(case.seed)`` in float64 and cast.

    Weights and biases from torch's init, U(-1/sqrt(H), 1/sqrt(H)) (scaled to keep relu
    gradients finite); inputs, states and upstream gradients from N(0, 1). No element is
    zero but with probability zero, and no two are tied to each other, except the input rows
    of ``case.zero_input_steps``, which are exactly zero.
    """
    rng = np.random.default_rng(case.seed)
    dtype = case.np_dtype
    bound = 1.0 / np.sqrt(case.hidden_size)

    def uniform(shape):
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    def normal(shape):
        return rng.standard_normal(shape).astype(dtype)

    params = {name: uniform(param_shape(case, name)) for name in param_names(case)}
    in_shape = output_shape(case)[:-1] + (case.input_size,)
    x = normal(in_shape)
    steps = list(case.zero_input_steps)  # drawn, then zeroed: the other arrays stay the same
    if case.batch_first and not case.unbatched:
        x[:, steps] = 0.0  # (B, T, I)
    else:
        x[steps] = 0.0  # (T, B, I) or (T, I)
    h0 = normal(state_shape(case, case.h_out)) if case.hx else None
    c0 = normal(state_shape(case, case.hidden_size)) if case.hx and case.kind == "LSTM" else None
    grad_output = normal(output_shape(case))
    grad_h_n = normal(state_shape(case, case.h_out)) if case.grad_h_given() else None
    grad_c_n = normal(state_shape(case, case.hidden_size)) if case.grad_c_given() else None
    masks = None
    if case.dropout_mode == "train_masks":
        p = case.dropout
        masks = [
            ((rng.random(output_shape(case)) >= p) / (1.0 - p)).astype(dtype)
            for _ in range(case.num_layers - 1)
        ]
    return CaseData(params, x, h0, c0, grad_output, grad_h_n, grad_c_n, masks)
