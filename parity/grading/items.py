"""The rubric's items: what each one grades, on which cases, against which reference.

The items are ``parity.spec``'s: each grades the study functions whose entries name it and
runs, as the reference, the study functions those call but it does not grade there
(``ItemSpec.stand_ins``), so one wrong function costs only the items that grade it. Its
calls, the reference's answers, the words of a failure and the loop over a case are
``parity.calls``'s, shared with the student's check; the reference is the real ``scratch``
package, imported here in the grader, and the submission runs in a child (``Child``). Every
graded function is pure: arrays in, new arrays out, so an item compares what it returns and
nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

import scratch
from parity import spec
from parity.calls import (
    Call,
    Failure,
    check_case,
    describe_error,
    judge,
    layer_arguments,
)
from parity.case import Case, make_data, public_cases
from parity.grading import protocol
from parity.grading.cases import strategy
from parity.grading.session import Child, ChildFailure


@dataclass(frozen=True)
class Item:
    """An item of ``parity.spec`` (its id, title, weight, words and graded functions) and how
    the grader runs it."""

    spec: spec.ItemSpec
    strategy: Callable[[], st.SearchStrategy]
    check: Callable[[Child, object, float], Failure | None]
    pinned: tuple = ()  # cases every grading runs first, before the drawn ones: the public ones


class ScratchReference:
    """The grader's reference: the real ``scratch``."""

    def function(self, name: str):
        return spec.BY_NAME[name].resolve()

    def layer(self, case: Case):
        args, kwargs = layer_arguments(case)
        module = getattr(scratch, spec.MODES[case.mode].cls)(*args, **kwargs, seed=0)
        module.load_state_dict(make_data(case).params)
        module.train(case.training)
        return module


REFERENCE = ScratchReference()


def run_calls(child: Child, calls: list[Call], seconds: float, case_words: str,
              oracle_names=()) -> Failure | None:
    """Run the calls in one request; the first that raises or differs is the failure."""
    specs = [{"target": c.target, "args": c.args, "kwargs": c.kwargs} for c in calls]
    answer = child.request("calls", specs, seconds, oracles=oracle_names)
    if not answer.ok:
        cause, words = describe_error(answer.error, calls[0].function)
        return Failure(calls[0].function, words, case_words, cause, notes=answer.notes)
    results = answer.value
    if not isinstance(results, list) or len(results) != len(calls) or not all(
            isinstance(r, (list, tuple)) and len(r) == 3 and isinstance(r[0], bool)
            for r in results):
        child.close_process()  # its next answers could not be trusted to match requests
        raise ChildFailure("the submission's process did not answer every call it was asked "
                           f"to make ({len(calls)}): its answer was malformed")
    for call, (ok, value, error) in zip(calls, results, strict=True):
        failure = judge(call, ok, value, protocol.clean_error(error), case_words,
                        answer.notes)
        if failure is not None:
            return failure
    return None


def item_check(item: spec.ItemSpec) -> Callable[[Child, object, float], Failure | None]:
    """The check of one case of the item (``parity.calls.check_case``): a layer's forward and
    backward (twice over where the item grades ``_accumulate``, which adds the gradients up),
    or its functions' calls, forward first, each in one request to the child."""

    def check(child: Child, case, seconds: float) -> Failure | None:
        def layer_in_child(request: dict, stand_ins: tuple[str, ...]):
            answer = child.request("module", request, seconds, oracles=stand_ins)
            return answer.value, answer.error, answer.notes

        def calls_in_child(calls: list[Call], case_words: str,
                           stand_ins: tuple[str, ...]) -> Failure | None:
            return run_calls(child, calls, seconds, case_words, stand_ins)

        return check_case(item, case, REFERENCE, layer_in_child, calls_in_child)

    return check


ITEMS: tuple[Item, ...] = tuple(
    Item(s, (lambda s=s: st.one_of(*(strategy(options) for options in s.cases))),
         item_check(s), tuple(public_cases(s)))
    for s in spec.ITEMS)
ITEMS_BY_ID = {item.spec.id: item for item in ITEMS}
