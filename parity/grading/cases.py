"""The cases a submission is graded on: small, random, non-zero, and the same for everyone.

``parity.case`` builds a case from its choices (``draw_case``) and ships with the handout:
the public cases take the choices from NumPy's generator, and here Hypothesis makes them. It
draws only the configuration (sizes, flags, a seed; the arrays come from the seed, as
``parity.case`` says), so shrinking makes the sizes and the seed small, never the numbers
degenerate; and a choice shrinks toward the simplest case: biases, an initial state and an
upstream gradient into it (what hides the fewest bugs). Grading seeds Hypothesis with the item
and the course seed (``grade.run_item``): every submission of a course meets the same cases, in
the same order, until one fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from hypothesis import strategies as st

from parity.case import draw_case
from parity.spec import ALL_MODES


class HypothesisDraws(NamedTuple):
    """``parity.case.PublicDraws``'s calls answered by Hypothesis: every size from its whole
    range, shrinking to the smallest; a choice shrinks to the value the smallest public case
    takes (``small``), else to the first option."""

    draw: Callable[..., Any]

    def size(self, label: str, low: int, high: int, **fixed: int) -> int:
        return self.draw(st.integers(low, high), label=label)

    integer = size  # a public case fixes an integer only at its low end, where this shrinks

    def integers(self, label: str, low: int, high: int, count: int) -> tuple[int, ...]:
        return tuple(self.draw(st.lists(st.integers(low, high), min_size=count,
                                        max_size=count), label=label))

    def choice(self, label: str, options: tuple, **fixed):
        simplest = fixed.get("small", options[0])
        return self.draw(st.sampled_from(
            (simplest, *(o for o in options if o != simplest))), label=label)


@st.composite
def strategy(draw, options: dict):
    """The strategy of one of an item's case options (``parity.spec.ItemSpec.cases``)."""
    mode = draw(st.sampled_from(options.get("modes", ALL_MODES)), label="mode")
    return draw_case(options, mode, HypothesisDraws(draw))
