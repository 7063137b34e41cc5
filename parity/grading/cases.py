"""The cases a submission is graded on: small, random, non-zero, and the same for everyone.

The cases themselves (``parity.case``: ``FunctionCase`` for one cell and one direction,
``Case`` for a whole layer) and each item's options for them (``parity.spec``) ship with the
handout; here they become Hypothesis strategies.

Hypothesis draws the configuration (sizes, flags, a seed); every array is then drawn from
``numpy.random.default_rng(seed)`` in float64, weights near torch's init scale and everything
else from N(0, 1), so no number is zero and no two are tied. Shrinking makes the sizes and
the seed small, never the numbers degenerate; flags are drawn so that the simplest case has
biases, an initial state and an upstream gradient into it (what hides the fewest bugs).
Grading seeds Hypothesis with the item and the course seed (``grade.run_item``): every
submission of a course meets the same cases, in the same order, until one fails.
"""

from __future__ import annotations

from hypothesis import strategies as st

from parity.case import Case, FunctionCase
from parity.spec import ALL_MODES as MODES

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
    mode = draw(st.sampled_from(MODES), label="mode")
    hidden = draw(st.integers(1, 4), label="hidden_size")
    proj_size = 0
    if proj and mode == "LSTM" and hidden > 1 and draw(st.booleans(), label="projection"):
        proj_size = draw(st.integers(1, hidden - 1), label="proj_size")
    state_grads = ("h", "both", "c", "none") if mode == "LSTM" else ("h", "none")
    return Case(
        mode=mode, input_size=draw(st.integers(1, 4), label="input_size"), hidden_size=hidden,
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


def strategy(options: dict) -> st.SearchStrategy:
    """The strategy of one of an item's case options (``parity.spec.ItemSpec.cases``)."""
    options = dict(options)
    level = options.pop("level")
    if level == "layer":
        return layer_cases(**options)
    return function_cases(options.pop("modes", MODES), **options)
