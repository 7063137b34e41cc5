"""Whole training runs, scratch against torch: same initial weights, same data, N updates.

Each case builds a scratch model, copies it into its torch twin (``torch_impl.to_torch``),
draws all the data up front in NumPy float64, and trains both sides independently, each with
its own optimizer, clipping and truncated BPTT (``scratch.tbptt`` and ``torch_impl.models``).
Nothing passes between the sides after the start, so rounding differences are free to grow
through the updates. At the end it compares

* every parameter:  max |scratch - torch| / max(1, max |torch|), the largest over the
  parameters (``max_param_diff``);
* the loss curve:   the same measure over the N losses (``max_loss_diff``);

against ``TRAINING_TOL``. Rounding alone leaves ~1e-15 after a hundred updates here, and a
wrong formula (a missing bias correction, eps in the wrong place, a momentum buffer started
at zero instead of at g) leaves 1e-4 or more after a few steps; 1e-9 sits between the two
with room on both sides.

A training run must be stable for this to mean anything. When the learning rate is high
enough for the run to be chaotic, a difference in the last bit grows exponentially (seen: x10
every ~15 updates), and scratch started one ulp away from *itself* drifts apart exactly as
far as scratch from torch (seen in adamw/rnn_classification of the thorough profile at 0.3 x
the learning rate: 5e-8 from itself, 1e-8 from torch, after 300 updates; 1e-13 at 0.2 x). The
profiles' learning rates (``Sizes.lr_scale``) keep every case inside the stable range; a case
that drifts is a finding to explain (run it against itself one ulp apart), not a tolerance to
loosen.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

import scratch
import torch_impl
from parity.diff import measure
from parity.tolerances import TRAINING_TOL
from scratch import tbptt
from scratch.losses import flat_cross_entropy
from scratch.tbptt import split_chunks
from torch_impl import models as torch_models


@dataclass(frozen=True)
class Sizes:
    """How big a profile's runs are."""

    steps: int  # updates per run (>= 100)
    seq_len: int  # T of a batch, or of a chunk for truncated BPTT
    batch: int
    input_size: int
    hidden_size: int
    vocab_size: int  # CharLM
    embedding_dim: int  # CharLM
    lr_scale: float  # multiplies each case's lr: larger models need smaller steps to stay stable


_SMALL = Sizes(steps=100, seq_len=8, batch=4, input_size=3, hidden_size=6, vocab_size=10,
               embedding_dim=4, lr_scale=1.0)
# the profiles of ``python -m parity --profile``; quick and ci are the same small runs (about
# 3 s for all cases), thorough trains larger models three times as long (about 10 s)
PROFILES = {
    "quick": _SMALL,
    "ci": _SMALL,
    "thorough": Sizes(steps=300, seq_len=20, batch=8, input_size=5, hidden_size=16,
                      vocab_size=24, embedding_dim=8, lr_scale=0.2),
}


@dataclass(frozen=True)
class TrainingCase:
    """One training run. ``optimizer`` is "sgd", "adam" or "adamw", with ``options`` its
    keyword arguments (the same on both sides)."""

    name: str
    model: str = "simple_rnn"  # or "char_lm"
    cell: str = "rnn"  # "rnn", "lstm" or "gru": the models' kind
    optimizer: str = "sgd"
    options: dict = field(default_factory=dict)
    task: str = "regression"  # SimpleRNN: "regression" (MSELoss) or "classification"
    max_norm: float | None = None  # clip_grad_norm_ before each step
    clip_value: float | None = None  # clip_grad_value_ before each step
    tbptt: bool = False  # one long stream per sequence, one update per chunk
    lengths: bool = False  # SimpleRNN: variable lengths in every batch
    num_layers: int = 1
    bidirectional: bool = False
    nonlinearity: str = "tanh"

    @property
    def output_size(self) -> int:
        """SimpleRNN's: the next value of a sine (tbptt), 3 classes, or 2 regression targets."""
        return 1 if self.tbptt else 3 if self.task == "classification" else 2


CASES = [
    TrainingCase("sgd/rnn", cell="rnn", optimizer="sgd", options=dict(lr=0.1)),
    TrainingCase("sgd_momentum/lstm", cell="lstm", optimizer="sgd",
                 options=dict(lr=0.05, momentum=0.9)),
    TrainingCase("sgd_nesterov/gru", cell="gru", optimizer="sgd",
                 options=dict(lr=0.05, momentum=0.9, nesterov=True)),
    TrainingCase("sgd_weight_decay_dampening/rnn_relu", cell="rnn", nonlinearity="relu",
                 optimizer="sgd",
                 options=dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    TrainingCase("adam/lstm_classification", cell="lstm", optimizer="adam",
                 options=dict(lr=0.01), task="classification"),
    TrainingCase("adam_amsgrad_weight_decay/gru", cell="gru", optimizer="adam",
                 options=dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True)),
    TrainingCase("adamw/rnn_classification", cell="rnn", optimizer="adamw",
                 options=dict(lr=0.01, weight_decay=0.1), task="classification"),
    TrainingCase("clip_norm/lstm", cell="lstm", optimizer="sgd",
                 options=dict(lr=0.3, momentum=0.5), max_norm=0.1),
    TrainingCase("clip_value/gru", cell="gru", optimizer="adam", options=dict(lr=0.01),
                 clip_value=0.02),
    TrainingCase("lengths_bidirectional_2layers/gru", cell="gru", optimizer="adam",
                 options=dict(lr=0.01), lengths=True, num_layers=2, bidirectional=True),
    TrainingCase("tbptt/lstm", cell="lstm", optimizer="adam", options=dict(lr=0.01),
                 tbptt=True, max_norm=1.0),
    TrainingCase("char_lm/rnn_adamw", model="char_lm", cell="rnn", optimizer="adamw",
                 options=dict(lr=0.01)),
    TrainingCase("char_lm/lstm_adam_tbptt", model="char_lm", cell="lstm", optimizer="adam",
                 options=dict(lr=0.01), tbptt=True),
    TrainingCase("char_lm/gru_sgd_clip_tbptt", model="char_lm", cell="gru", optimizer="sgd",
                 options=dict(lr=0.5, momentum=0.9), max_norm=0.5, tbptt=True),
]

SCRATCH_OPTIMIZERS = {"sgd": scratch.SGD, "adam": scratch.Adam, "adamw": scratch.AdamW}
TORCH_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
                    "adamw": torch.optim.AdamW}


@dataclass
class RunResult:
    """Both sides of one case: loss curves and final parameters (and the initial ones)."""

    case: TrainingCase
    steps: int
    scratch_losses: np.ndarray
    torch_losses: np.ndarray
    scratch_params: dict
    torch_params: dict
    initial_params: dict

    @property
    def max_param_diff(self) -> float:
        return max(_rel_diff(self.scratch_params[k], self.torch_params[k])
                   for k in self.torch_params)

    @property
    def max_loss_diff(self) -> float:
        return _rel_diff(self.scratch_losses, self.torch_losses)

    @property
    def passed(self) -> bool:
        return self.max_param_diff <= TRAINING_TOL and self.max_loss_diff <= TRAINING_TOL

    def row(self) -> dict:
        return {"name": self.case.name, "steps": self.steps,
                "max_param_diff": self.max_param_diff, "max_loss_diff": self.max_loss_diff,
                "tolerance": TRAINING_TOL, "passed": self.passed}


def _rel_diff(a, b) -> float:
    """parity.diff's measure of scratch's ``a`` against torch's ``b``; infinite where the two
    cannot be compared (other shapes, or anything but finite numbers on either side)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return measure(b, a).error if b.size else 0.0


# -- data -------------------------------------------------------------------------------------
def make_data(case: TrainingCase, sizes: Sizes, rng: np.random.Generator):
    """The batches of every step, in NumPy: a list of (inputs, targets, forward kwargs) for
    plain runs, or (input chunks, target chunks) for truncated BPTT."""
    S, T, B = sizes.steps, sizes.seq_len, sizes.batch
    if case.model == "char_lm":
        V = sizes.vocab_size
        # tokens from a random Markov chain, so that there is something to learn
        transitions = rng.dirichlet(np.full(V, 0.3), size=V)  # (V, V)
        length = S * T + 1 if case.tbptt else (T + 1)
        count = 1 if case.tbptt else S
        streams = _markov(transitions, rng, length, B * count).reshape(length, count, B)
        if case.tbptt:
            tokens = streams[:, 0]  # (S*T + 1, B)
            return split_chunks(tokens[:-1], T), split_chunks(tokens[1:], T)
        return [(streams[:-1, s], streams[1:, s], {}) for s in range(S)]

    if case.tbptt:  # noisy sines, one stream per sequence; predict the value after each chunk
        t = np.arange(S * T + 1)[:, None]  # (S*T + 1, 1)
        freq = rng.uniform(0.1, 0.4, size=B)
        phase = rng.uniform(0, 2 * np.pi, size=B)
        signal = np.sin(freq * t + phase) + 0.05 * rng.standard_normal((S * T + 1, B))
        x = signal[:-1, :, None]  # (S*T, B, 1)
        return split_chunks(x, T), [signal[(k + 1) * T, :, None] for k in range(S)]

    I = sizes.input_size
    A = rng.standard_normal((I, case.output_size))
    batches = []
    for _ in range(S):
        x = rng.standard_normal((T, B, I))
        lengths = rng.integers(1, T + 1, size=B) if case.lengths else np.full(B, T)
        valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
        summary = (x * valid).sum(axis=0) / lengths[:, None] @ A  # (B, out)
        y = np.tanh(summary) if case.task == "regression" else summary.argmax(axis=1)
        batches.append((x, y, {"lengths": lengths} if case.lengths else {}))
    return batches


def _markov(transitions, rng, length, count) -> np.ndarray:
    V = transitions.shape[0]
    cdf = np.cumsum(transitions, axis=1)
    tokens = np.empty((length, count), dtype=np.int64)
    tokens[0] = rng.integers(0, V, size=count)
    for t in range(1, length):
        u = rng.random(count)
        tokens[t] = np.minimum((cdf[tokens[t - 1]] < u[:, None]).sum(axis=1), V - 1)
    return tokens


def build_model(case: TrainingCase, sizes: Sizes, seed: int):
    if case.model == "char_lm":
        return scratch.CharLM(sizes.vocab_size, sizes.embedding_dim, sizes.hidden_size,
                              kind=case.cell, num_layers=case.num_layers, seed=seed)
    input_size = 1 if case.tbptt else sizes.input_size
    return scratch.SimpleRNN(input_size, sizes.hidden_size, case.output_size, kind=case.cell,
                             num_layers=case.num_layers, nonlinearity=case.nonlinearity,
                             bidirectional=case.bidirectional, seed=seed)


# -- the two sides ----------------------------------------------------------------------------
def _losses(case: TrainingCase):
    """(scratch's loss_and_grad, torch's loss function) of the case."""
    if case.model == "char_lm":  # cross-entropy at every position
        return (partial(flat_cross_entropy, scratch.CrossEntropyLoss()),
                lambda logits, y: F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                  y.reshape(-1)))
    if case.task == "classification":
        return scratch.CrossEntropyLoss().loss_and_grad, F.cross_entropy
    return scratch.MSELoss().loss_and_grad, F.mse_loss


def _options(case: TrainingCase, lr_scale: float) -> dict:
    return dict(case.options, lr=case.options["lr"] * lr_scale)


def run_scratch(case: TrainingCase, model, data, lr_scale: float = 1.0) -> np.ndarray:
    """Train the scratch model in place; returns the loss of every update."""
    optimizer = SCRATCH_OPTIMIZERS[case.optimizer](model, **_options(case, lr_scale))
    return _train(tbptt, case, model, optimizer, _losses(case)[0], data)


def run_torch(case: TrainingCase, model, data, lr_scale: float = 1.0) -> np.ndarray:
    """Train the torch twin in place on the same data, as tensors; the loss of every update."""
    optimizer = TORCH_OPTIMIZERS[case.optimizer](model.parameters(), **_options(case, lr_scale))
    if case.tbptt:
        data = [[torch.as_tensor(a) for a in part] for part in data]
    else:
        data = [(torch.as_tensor(x), torch.as_tensor(y), kw) for x, y, kw in data]
    return _train(torch_models, case, model, optimizer, _losses(case)[1], data)


def _train(side, case: TrainingCase, model, optimizer, loss, data) -> np.ndarray:
    """The updates of one side: ``side`` is scratch.tbptt or torch_impl.models, whose
    train_step and train_tbptt are written alike."""
    clip = dict(max_norm=case.max_norm, clip_value=case.clip_value)
    if case.tbptt:
        losses, _ = side.train_tbptt(model, optimizer, loss, *data, **clip)
    else:
        losses = [side.train_step(model, optimizer, loss, x, y, **clip, **kw)[0]
                  for x, y, kw in data]
    return np.array(losses, dtype=np.float64)


def setup(case: TrainingCase, profile: str = "ci"):
    """(data, scratch model) of a case: the same for every call with the same case name."""
    sizes = _sizes(profile)
    rng = np.random.default_rng(zlib.crc32(f"{profile}/{case.name}".encode()))
    data = make_data(case, sizes, rng)
    return data, build_model(case, sizes, seed=int(rng.integers(2**31)))


def run_case(case: TrainingCase, profile: str = "ci") -> RunResult:
    """Train both sides from the same start on the same data; see the module docstring."""
    data, model = setup(case, profile)
    twin = torch_impl.to_torch(model)
    initial = model.state_dict()
    lr_scale = _sizes(profile).lr_scale
    scratch_losses = run_scratch(case, model, data, lr_scale)
    torch_losses = run_torch(case, twin, data, lr_scale)
    torch_params = {k: v.detach().numpy().copy() for k, v in twin.named_parameters()}
    return RunResult(case, len(scratch_losses), scratch_losses, torch_losses,
                     dict(model.state_dict()), torch_params, dict(initial))


def _sizes(profile: str) -> Sizes:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    return PROFILES[profile]


def run_training_parity(profile: str) -> list[dict]:
    """Every case of the profile, one row each: {"name", "steps", "max_param_diff",
    "max_loss_diff", "tolerance", "passed"}."""
    return [run_case(case, profile).row() for case in CASES]

