"""A grade in words: the terminal report, and Gradescope's ``results.json``.

Gradescope's fields are those of its autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): a top-level ``score``,
``output`` (shown to the student), ``visibility``, ``stdout_visibility``, ``extra_data`` and
``tests`` (each with ``score``, ``max_score``, ``name``, ``number``, ``output``, ``status``,
``visibility``).

The feedback of an item is the same in both: whether it passed, and if not, which function,
what differs (the first tensor, where, by how much), on which case (the smallest failing one
Hypothesis found), and what has to be right for the item. Notes from the wall (a blocked
import, a replaced NumPy function) are added so that the student knows why something had no
effect.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from parity import spec
from parity.calls import failure_text
from parity.grading.grade import GradeResult, ItemResult


def feedback(result: ItemResult) -> str:
    """What a student reads for one item."""
    if result.passed:
        text = f"Passed: all {result.cases} cases agree with the reference."
    else:
        assert result.failure is not None
        text = failure_text(result.failure, spec.ITEMS_BY_ID[result.id])
    notes = [n for n in result.notes if not n.startswith("skipped ")]
    if notes:
        text += "\nNotes: " + "; ".join(notes)
    return text


def terminal_report(grade: GradeResult, verbose: bool = False, seed: bool = True) -> str:
    """The report for a terminal: one line per item, the feedback of each failing item.

    seed: say which course seed drew the cases (the instructor's secret: False for a report
    that may be handed to the student). Gradescope's results.json never holds it."""
    lines = [f"Grading {grade.submission}: {grade.score:g} / {grade.max_score:g} points "
             f"({grade.seconds:.1f} s)"]
    if seed and grade.seed is not None:
        lines.append(f"  seed {grade.seed}: " + (
            f"drawn for this run (the rubric sets none); --seed {grade.seed} meets the same "
            "cases" if grade.seed_drawn else "set by the rubric or --seed"))
    if grade.wall:  # which wall graded, first (UNSAFE where none did)
        lines.insert(0, grade.wall)
    if grade.error:
        lines.append(f"  {grade.error}")
    width = max((len(item.title) for item in grade.items), default=10)
    for item in grade.items:
        status = "pass" if item.passed else "FAIL"
        hidden = "" if item.visibility == "visible" else f"  [{item.visibility}]"
        lines.append(f"  {status}  {item.title:<{width}}  {item.score:>5g} / {item.weight:<5g}"
                     f" {item.seconds:5.1f} s{hidden}")
        if not item.passed or verbose:
            lines += ["        " + line for line in feedback(item).splitlines()]
    for note in grade.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def gradescope_results(grade: GradeResult) -> dict:
    """Gradescope's results.json: the score, and one test per item with its own score,
    max_score, status, output and visibility."""
    tests = []
    for number, item in enumerate(grade.items, start=1):
        tests.append({
            "name": item.title, "number": str(number), "score": item.score,
            "max_score": item.weight, "status": "passed" if item.passed else "failed",
            "output": feedback(item), "visibility": item.visibility,
        })
    passed = sum(item.passed for item in grade.items)
    summary = (f"{passed} of {len(grade.items)} items passed. Each item is graded on its own "
               "cases; a failing item shows its smallest failing case.")
    if grade.error:
        summary = f"{grade.error}\n{summary}"
    if grade.wall:
        summary = f"{grade.wall}\n{summary}"
    return {"score": grade.score, "execution_time": round(grade.seconds, 1),
            "output": summary, "stdout_visibility": "hidden", "tests": tests}


def autograder_fault(why: str) -> str:
    """What a student reads when the grading machine, not the submission, failed."""
    return (f"The autograder is misconfigured: {why}. Your submission was NOT graded. This is "
            "not your fault and says nothing about your code: any score of 0 shown for this "
            "run is a placeholder, not a grade. Please tell your instructor; once it is fixed, "
            "submit again or ask for a regrade.")


def gradescope_fault_results(why: str) -> dict:
    """Gradescope's results.json for a run that graded nothing through the machine's fault:
    score 0 (Gradescope needs one), the reason at the top (``output``, always visible), no
    tests, and ``extra_data`` marking it for the instructor."""
    return {"score": 0, "output": autograder_fault(why), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": [],
            "extra_data": {"autograder_fault": True, "reason": why}}


def write_private(text: str, path: str | Path) -> Path:
    """Write a file whole or not at all: into a new file beside it, then renamed over it (a
    file or link already at the path is replaced, never written through). The file is the
    writer's alone (0600): a report may hold the course seed and other students' grades, and
    behind the uid wall a child can open what any uid can."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", newline="") as handle:
        handle.write(text)
    os.replace(partial, path)
    return path


def write_json(data, path: str | Path) -> Path:
    return write_private(json.dumps(data, indent=2) + "\n", path)
