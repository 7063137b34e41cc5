"""The zoo against the grader and the student's check: each member loses the points of items
that grade its bug, and keeps every other item's; the check says the same, word for word.

Each member of parity.zoo is the reference with one realistic bug in some study functions
(``zoo.items_at_stake``, from parity.spec): it must lose at least one item that grades each
function it changes, and no item that grades none of them. Each member is graded on every item,
6 cases per item (the same derandomized cases every run), and checked by ``python -m parity
check``: its PASS/FAIL and failure text per visible item must equal the grader's.
"""

from __future__ import annotations

import pytest
from test_parity_check import VISIBLE, run_check, verdicts

from parity import spec, zoo
from parity.calls import failure_text
from parity.grading.grade import grade_submission
from parity.grading.rubric import rubric_from_dict

RUBRIC = rubric_from_dict({"max_examples": 6})
# its last layer draws a mask of its own at each run: its numbers differ from run to run
RANDOM = {"dropout_after_last_layer"}


def test_every_member_changes_study_functions():
    for mutant in zoo.MUTANTS:
        assert zoo.items_at_stake(mutant), mutant.name


FEEDBACK_CHECKED = {"gru_textbook", "gru_one_bias_grad", "b_ih_forgotten"}


@pytest.mark.parametrize("name", sorted(zoo.BY_NAME))
def test_member_loses_exactly_the_items_of_its_bug(tmp_path, name):
    try:
        path = zoo.materialize(name, tmp_path)
    except zoo.PatchError as error:  # a lost member would grade nothing: fail, never skip
        pytest.fail(f"zoo member {name} does not apply to scratch/ as it is now (update its "
                    f"patch in parity/zoo/mutants.py): {error}")
    row = grade_submission(path, RUBRIC)
    assert row.error is None
    failed = {item.id for item in row.items if not item.passed}
    kept = {item.id for item in row.items if item.passed}
    stake = zoo.items_at_stake(zoo.BY_NAME[name])
    for function, items in stake.items():
        assert failed & set(items), f"{name} changes {function} but keeps all of {items}"
    assert failed <= set().union(*stake.values()), (
        f"{name} should keep {failed - set().union(*stake.values())}: "
        + "; ".join(i.failure.problem for i in row.items if i.id in failed))
    for item in row.items:
        assert item.score == (item.weight if item.id in kept else 0.0)
    assert row.score == sum(i.weight for i in row.items if i.id in kept) < row.max_score
    # the student's check on the same copy: the grader's verdicts, in the grader's words
    check = verdicts(run_check(path.parent, True, path.name, handout=False).stdout)
    for item in row.items:
        if item.id in VISIBLE:
            graders = ("PASS", "") if item.passed else (
                "FAIL", failure_text(item.failure, spec.ITEMS_BY_ID[item.id]))
            if name in RANDOM:
                check[item.id], graders = check[item.id][0], graders[0]
            assert check[item.id] == graders, (name, item.id)
    if name in FEEDBACK_CHECKED:  # the feedback names the function, the tensor and the case
        failure = next(item for item in row.items if not item.passed).failure
        assert failure.cause == "wrong" and failure.shrunk
        assert "differs at index" in failure.problem and "expected" in failure.problem
        assert failure.function in failure.problem
        assert "seed" in failure.case
