"""Hypothesis strategies over the whole configuration space of a parity case.

``draw_case(data, mode, profile, device)`` draws one ``Case`` step by step, each draw
labelled, so that a failing example reads as a story:

    Draw 1 (input_size): 3
    Draw 2 (hidden_size): 4
    Draw 3 (proj_size): 2
    ...

The arrays themselves are not drawn by Hypothesis: the case carries a ``seed`` from which
parity.case.make_data draws every weight, bias, initial state, input, upstream gradient and
dropout mask with NumPy, each element independently. That keeps Hypothesis's choices small
(it shrinks a failure toward the smallest configuration and seed 0) while every number is
random and non-zero.

``Profile`` sets the sizes and how many examples: many small ones in ``quick`` and ``ci``,
fewer and far larger in ``thorough``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from hypothesis import strategies as st

from parity.case import DROPOUT_MODES, Case
from parity.spec import ALL_MODES


@dataclass(frozen=True)
class Profile:
    name: str
    examples: int  # Hypothesis examples per mode and device
    group_examples: int  # Hypothesis examples per function group (parity.units)
    max_size: int  # input_size and hidden_size
    max_seq_len: int
    max_batch: int
    max_layers: int
    derandomize: bool  # the same cases every run (a fixed seed per mode and device)
    shrink: bool = True
    large: bool = False  # draw a "size class": half the cases from the top half of each range


# the ranges of a "small" case when a profile also draws large ones
SMALL = dict(max_size=10, max_seq_len=12, max_batch=5)


PROFILES = {
    "quick": Profile("quick", examples=25, group_examples=15, max_size=5, max_seq_len=5,
                     max_batch=3, max_layers=2, derandomize=True),
    "ci": Profile("ci", examples=400, group_examples=100, max_size=10, max_seq_len=12,
                  max_batch=5, max_layers=3, derandomize=True),
    "thorough": Profile("thorough", examples=1000, group_examples=300, max_size=48,
                        max_seq_len=120, max_batch=16, max_layers=4, derandomize=False,
                        large=True),
}

DTYPES = ("float64", "float32")


def draw_case(data, mode: str, profile: Profile, device: str = "cpu") -> Case:
    """Draw one case of this mode; every draw is labelled."""
    if mode not in ALL_MODES:
        raise ValueError(f"mode must be one of {ALL_MODES}, got {mode!r}")

    def draw(strategy, label):
        return data.draw(strategy, label=label)

    large = profile.large and draw(st.sampled_from([False, True]), "large sizes")

    def sizes(bound: str) -> st.SearchStrategy[int]:
        top = getattr(profile, bound)
        if not profile.large:
            return st.integers(1, top)
        if large:
            return st.integers(max(1, top // 2), top)
        return st.integers(1, min(top, SMALL[bound]))

    input_size = draw(sizes("max_size"), "input_size")
    hidden_size = draw(sizes("max_size"), "hidden_size")
    proj_size = 0
    if mode == "LSTM" and hidden_size > 1:
        proj_size = draw(st.one_of(st.just(0), st.integers(1, hidden_size - 1)), "proj_size")
    num_layers = draw(st.integers(1, profile.max_layers), "num_layers")
    bidirectional = draw(st.booleans(), "bidirectional")
    bias = draw(st.booleans().map(lambda no_bias: not no_bias), "bias")
    unbatched = draw(st.sampled_from([False, False, True]), "unbatched")
    batch_first = draw(st.booleans(), "batch_first")
    seq_len = draw(sizes("max_seq_len"), "seq_len (T)")
    batch = 1 if unbatched else draw(sizes("max_batch"), "batch (B)")
    lengths = None
    if not unbatched and draw(st.booleans(), "variable lengths"):
        lengths = tuple(draw(
            st.lists(st.integers(1, seq_len), min_size=batch, max_size=batch), "lengths"))
    hx = draw(st.booleans().map(lambda no_hx: not no_hx), "hx given")
    # the first choice is what a failure shrinks toward: an upstream gradient for every state
    state_grads = ("both", "none", "h", "c") if mode == "LSTM" else ("h", "none")
    state_grad = draw(st.sampled_from(state_grads), "upstream gradient of the final states")
    modes = DROPOUT_MODES if num_layers > 1 else DROPOUT_MODES[:3]
    dropout_mode = draw(st.sampled_from(modes), "dropout mode")
    if dropout_mode == "eval":
        dropout = draw(st.sampled_from([0.0, 0.5]), "dropout p (not applied in eval mode)")
    elif dropout_mode == "train_masks":
        dropout = draw(st.sampled_from([0.25, 0.5, 0.75]), "dropout p of the masks")
    else:
        dropout = 0.0 if dropout_mode == "train_p0" else 1.0
    dtype = draw(st.sampled_from(DTYPES), "dtype")
    seed = draw(st.integers(0, 2**32 - 1), "seed of the arrays")
    return Case(
        mode=mode, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers,
        proj_size=proj_size, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
        unbatched=unbatched, seq_len=seq_len, batch=batch, lengths=lengths, hx=hx,
        state_grad=state_grad, dropout_mode=dropout_mode, dropout=float(dropout), dtype=dtype,
        device=device, seed=seed,
    )


@st.composite
def cases(draw, mode: str, profile: Profile = PROFILES["quick"], device: str = "cpu") -> Case:
    """The same space as a plain strategy, for ``@given(case=cases("LSTM"))`` in tests (a
    composite's ``draw`` takes a label too, as ``data.draw`` does)."""
    return draw_case(SimpleNamespace(draw=draw), mode, profile, device)
