"""The grader on the reference: full marks, the same cases for everyone, the smallest failing
case, and the pieces a grade is made of (rubric files, reports, the wire, the comparison)."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

import scratch
from parity import tolerances
from parity.diff import first_divergence
from parity.grading import protocol
from parity.grading.grade import MIN_SECRET_CASES, grade_submission, run_item
from parity.grading.items import ITEMS, ITEMS_BY_ID
from parity.grading.oracles import reference_oracles, resolve, setup_list
from parity.grading.report import feedback, gradescope_results, terminal_report
from parity.grading.rubric import default_rubric, load_rubric, rubric_from_dict
from parity.grading.session import Child, Limits

REFERENCE = Path(scratch.__file__).resolve().parent
QUICK = rubric_from_dict({"max_examples": 5})


def copy_reference(root: Path, replace: tuple[str, str, str] | None = None) -> Path:
    package = root / "scratch"
    shutil.copytree(REFERENCE, package, ignore=shutil.ignore_patterns("__pycache__"))
    if replace is not None:
        file, old, new = replace
        text = (package / file).read_text()
        assert text.count(old) == 1, f"{old!r} must occur once in {file}"
        (package / file).write_text(text.replace(old, new))
    return root


# -- the reference -------------------------------------------------------------------------------
def test_the_reference_scores_full_marks_on_the_default_rubric():
    rubric = default_rubric()
    grade = grade_submission(REFERENCE.parent, rubric)
    assert grade.error is None
    assert [item.id for item in grade.items] == [item.spec.id for item in ITEMS]
    for item in grade.items:
        assert item.passed, f"{item.id}: {item.failure}"
        assert item.score == item.weight > 0
        assert item.cases >= min(rubric.max_examples, 10)
    assert grade.score == grade.max_score == 100


def _recorded_cases(path: Path, item_id: str) -> list:
    """The cases one item is graded on, in order, for the submission at path."""
    seen = []
    item = ITEMS_BY_ID[item_id]

    def record(child, case, seconds):
        seen.append(case)
        return item.check(child, case, seconds)

    recording = dataclasses.replace(item, check=record)
    limits = Limits()
    with Child(path / "scratch", limits, reference_oracles(), resolve) as child:
        assert child.request("setup", {"oracles": setup_list()}, limits.start_seconds).ok
        failure, count = run_item(recording, child, limits, max_examples=12)
    assert failure is None and count == len(seen)
    return seen


@pytest.mark.parametrize("item_id", ["lstm_backward", "lengths", "multi_layer"])
def test_every_submission_meets_the_same_cases(tmp_path, item_id):
    # two submissions that differ, but both pass: the cases must be the very same
    other = copy_reference(tmp_path, ("functional/lstm_cell.py", '"""LSTM cell',
                                      '# a student\'s comment\n"""LSTM cell'))
    first = _recorded_cases(REFERENCE.parent, item_id)
    assert first == _recorded_cases(other, item_id)
    # the public cases first, then drawn ones up to 12 in all, never fewer than 5 drawn
    public = len(ITEMS_BY_ID[item_id].pinned)
    assert len(first) == public + max(12 - public, MIN_SECRET_CASES) and len(set(first)) > 6


def test_a_failure_is_shrunk_to_the_smallest_case(tmp_path):
    # a bug that shows only from hidden_size 4 up, which no public case has: the report must
    # show exactly that size, with the other sizes at their smallest
    assert all(case.H < 4 for case in ITEMS_BY_ID["gru_forward"].pinned)
    path = copy_reference(tmp_path, (
        "functional/gru_cell.py",
        "    return h, GRUStepCache(h_prev, r, z, n, gh_n)",
        "    h = h * np.where(np.arange(h.shape[-1]) >= 3, 1.5, 1.0)\n"
        "    return h, GRUStepCache(h_prev, r, z, n, gh_n)"))
    grade = grade_submission(path, QUICK, items=["gru_forward", "gru_backward"])
    forward, backward = grade.items
    assert backward.passed  # the backward item is handed the reference's cache
    failure = forward.failure
    assert failure.shrunk and failure.function == "gru_step_forward"
    assert "B=1, input_size=1, hidden_size=4" in failure.case
    assert "seed=0" in failure.case
    assert "returned h: differs at index [0, 3]" in failure.problem
    text = feedback(forward)
    assert "Smallest failing case" in text and "Graded functions: gru_step_forward" in text


# -- rubric files --------------------------------------------------------------------------------
def test_a_rubric_file_sets_weights_visibility_and_limits(tmp_path):
    path = tmp_path / "rubric.toml"
    path.write_text('max_examples = 7\n[limits]\ncase_seconds = 4\n'
                    '[items.bptt]\nweight = 20\nvisibility = "hidden"\n'
                    '[items.dropout]\nweight = 0\n')
    rubric = load_rubric(path)
    entries = {e.id: e for e in rubric.entries}
    assert rubric.max_examples == 7 and rubric.limits.case_seconds == 4
    assert entries["bptt"].weight == 20 and entries["bptt"].visibility == "hidden"
    assert "dropout" not in {e.id for e in rubric.graded}
    assert rubric.max_score == 100 - 12 + 20 - 6
    same = tmp_path / "rubric.json"
    same.write_text(json.dumps(rubric.to_dict()))
    assert load_rubric(same) == rubric


def test_every_problem_of_a_rubric_file_is_reported_at_once(tmp_path):
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps({"items": {"bptt": {"weight": -1}, "nope": {},
                                          "lengths": {"visibility": "secret"}},
                                "limits": {"case_seconds": 0}, "colour": 1}))
    with pytest.raises(ValueError) as error:
        load_rubric(path)
    message = str(error.value)
    for part in ("colour", "items.bptt.weight must be a number >= 0, got -1",
                 "unknown item 'nope'", "visibility must be one of", "case_seconds"):
        assert part in message
    with pytest.raises(ValueError, match="every item has weight 0"):
        rubric_from_dict({"items": {item.spec.id: {"weight": 0} for item in ITEMS}})
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        load_rubric(tmp_path / "rubric.yaml")


# -- reports -------------------------------------------------------------------------------------
def test_results_json_has_a_test_per_item_with_its_visibility(tmp_path):
    rubric = rubric_from_dict({"max_examples": 3, "items": {
        item.spec.id: {"weight": 0} for item in ITEMS if item.spec.id not in ("rnn_forward", "bptt")
    } | {"bptt": {"visibility": "after_published"}}})
    path = copy_reference(tmp_path, ("sequence.py", "        dh = dh_next + doutput[t]",
                                     "        dh = doutput[t] + 0.0"))
    grade = grade_submission(path, rubric)
    results = gradescope_results(grade)
    assert results["score"] == 4.0
    assert [(t["name"], t["score"], t["max_score"], t["status"], t["visibility"])
            for t in results["tests"]] == [
        ("RNN cell forward", 4.0, 4.0, "passed", "visible"),
        ("Backpropagation through time", 0.0, 12.0, "failed", "after_published"),
    ]
    assert "direction_backward returned dx_proj: differs" in results["tests"][1]["output"]
    text = terminal_report(grade)
    assert "FAIL  Backpropagation through time" in text and "[after_published]" in text
    json.dumps(grade.to_dict())  # the full result is plain JSON


# -- the wire ------------------------------------------------------------------------------------
Pair = namedtuple("Pair", "a b")


def test_values_cross_the_wire_unchanged():
    value = {"x": np.arange(6.0).reshape(2, 3), "t": (1, 2.5, None, "s", True),
             "l": [np.float64(3.5), Pair(np.ones(2), [np.zeros((0, 2))])]}
    doc, arrays = protocol.encode(value)
    back = protocol.decode(json.loads(json.dumps(doc)), arrays)
    assert back["t"] == value["t"] and back["l"][0] == 3.5
    assert isinstance(back["l"][0], np.float64)
    assert type(back["l"][1]).__name__ == "Pair" and back["l"][1]._fields == ("a", "b")
    np.testing.assert_array_equal(back["x"], value["x"])
    assert protocol.arrays_in(value)[0] is value["x"]


@pytest.mark.parametrize("bad", [np.array([object()]), lambda: 0, {1: np.ones(1)},
                                 np.array(["a"])])
def test_anything_but_plain_data_is_refused(bad):
    with pytest.raises(protocol.ProtocolError):
        protocol.encode({"v": bad})


def test_a_pickled_array_is_refused():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(protocol.ProtocolError, match="only numeric arrays"):
        protocol.array_from_bytes(buffer.getvalue())


def test_reference_classes_are_resolved_by_name_and_fields():
    from scratch.sequence import DirectionWeights

    assert resolve("scratch.sequence", "DirectionWeights",
                   DirectionWeights._fields) is DirectionWeights
    assert resolve("scratch.sequence", "DirectionWeights", ("W_hh",)) is None
    assert resolve("os", "path", ()) is None


# -- the comparison ------------------------------------------------------------------------------
def test_the_first_divergence_is_described_in_words():
    expected = (np.array([[1.0, 2.0], [3.0, 4.0]]), Pair(np.zeros(2), None))
    assert first_divergence(expected, (expected[0].copy(), Pair(np.zeros(2), None))) is None
    off = expected[0].copy()
    off[1, 0] += 0.5
    found = first_divergence(expected, (off, expected[1]), "out")
    assert str(found) == ("out[0]: differs at index [1, 0]: expected 3, got 3.5 (off by "
                          "5.00e-01; allowed 4.0e-10); 1 of 4 elements are off")
    found = first_divergence(expected, (expected[0][:1], expected[1]), "out")
    assert found.problem == "has shape (1, 2), expected (2, 2)"
    found = first_divergence(expected, (expected[0].astype(np.float32), expected[1]), "out")
    assert "dtype float32, expected float64" in found.problem
    found = first_divergence(expected, (expected[0], Pair(np.array([0.0, np.nan]), None)))
    assert found.name == "result[1].a"
    assert "nan at index [1]" in found.problem
    found = first_divergence(expected, (expected[0], Pair(np.zeros(2), np.ones(1))))
    assert found.problem == "expected None, got an array of shape (1,) (float64)"


def test_the_criterion_is_the_projects_float64_criterion():
    scale = 4.0
    reference = np.array([scale, 1.0])
    tol = tolerances.FLOAT64_TOL * scale
    assert first_divergence(reference, reference + np.array([0.0, 0.9 * tol])) is None
    assert first_divergence(reference, reference + np.array([0.0, 1.1 * tol])) is not None
