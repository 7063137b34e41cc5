"""Solution markers and the student's skeleton: the reference stays whole, the skeleton imports,
raises NotImplementedError where students write, fails its tests cleanly and grades to zero."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import scratch
from parity.grading.grade import grade_submission
from parity.grading.markers import (
    BEGIN,
    END,
    MarkerError,
    find_regions,
    regions_in_tree,
    strip_solutions,
)
from parity.grading.rubric import rubric_from_dict
from parity.grading.skeleton import write_skeleton
from parity.handout import checker_files

REFERENCE = Path(scratch.__file__).resolve().parent
PROJECT = REFERENCE.parent
EXPECTED = {
    "functional/rnn_cell.py": ["rnn_step_forward", "rnn_step_backward", "rnn_cell_forward",
                               "rnn_cell_backward"],
    "functional/lstm_cell.py": ["lstm_step_forward", "lstm_step_backward",
                                "lstm_cell_forward", "lstm_cell_backward"],
    "functional/gru_cell.py": ["gru_step_forward", "gru_step_backward", "gru_cell_forward",
                               "gru_cell_backward"],
    "sequence.py": ["direction_forward", "direction_backward"],
    "recurrent.py": ["RNNBase.forward", "RNNBase.backward", "RNNBase._accumulate"],
}

SOURCE = '''\
def step(x, w):
    """y = tanh(x w)."""
    ### BEGIN SOLUTION
    ### HINT: one product, then tanh
    y = x @ w
    return y
    ### END SOLUTION


class Layer:
    def run(self, x):
        checked = x
        ### BEGIN SOLUTION
        for _ in range(2):
            checked = checked + 1
        ### END SOLUTION
        return checked
'''


# -- markers -------------------------------------------------------------------------------------
def test_regions_become_todos_and_not_implemented():
    text, regions = strip_solutions(SOURCE, "m.py")
    assert [(r.function, r.hints) for r in regions] == [
        ("step", ("one product, then tanh",)), ("Layer.run", ())]
    assert "x @ w" not in text and "checked + 1" not in text
    assert '    # TODO: one product, then tanh\n    raise NotImplementedError("step: not ' \
           'written yet")\n' in text
    assert '        raise NotImplementedError("run: not written yet")\n        return checked' \
        in text
    namespace: dict = {}
    exec(compile(text, "m.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="step: not written yet"):
        namespace["step"](1, 2)


@pytest.mark.parametrize("source, message", [
    (f"def f():\n    {BEGIN}\n    {BEGIN}\n    x = 1\n    {END}\n", "do not nest"),
    (f"def f():\n    x = 1\n    {END}\n", "without a"),
    (f"def f():\n    {BEGIN}\n    x = 1\n", "never closed"),
    (f"def f():\n    {BEGIN}\n    x = 1\n  {END}\n", "indented differently"),
    (f"{BEGIN}\nx = 1\n{END}\n", "inside one function"),
    (f"def f():\n    {BEGIN}\n    {END}\n    x = 1\n", "holds no code"),
    ("def f():\n    ### HINT: x\n    x = 1\n", "outside a solution region"),
    ("def f(:\n", "not valid Python"),
])
def test_broken_markers_are_reported_with_file_and_line(source, message):
    with pytest.raises(MarkerError, match=message) as error:
        find_regions(source, "m.py")
    assert str(error.value).startswith("m.py:")


def test_the_reference_marks_the_functions_students_write():
    found: dict[str, list[str]] = {}
    for region in regions_in_tree(REFERENCE):
        found.setdefault(region.path, []).append(region.function)
        assert region.hints, f"{region.path} {region.function}: give students a hint"
    assert found == EXPECTED


def test_the_markers_are_comment_lines_only():
    for path in REFERENCE.rglob("*.py"):
        for line in path.read_text().splitlines():
            if "### " in line:
                assert line.lstrip().startswith(("### BEGIN SOLUTION", "### END SOLUTION",
                                                 "### HINT: ")), (path, line)


# -- the skeleton --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def skeleton(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout")
    return write_skeleton(out)


def test_the_skeleton_keeps_everything_but_the_regions(skeleton):
    out = skeleton.out
    reference_files = {f"scratch/{p.relative_to(REFERENCE).as_posix()}"
                       for p in REFERENCE.rglob("*") if p.is_file() and
                       "__pycache__" not in p.parts}
    checker = set(checker_files([]))
    assert set(skeleton.files) == reference_files | checker | {"README.md"}
    rnn = (out / "scratch/functional/rnn_cell.py").read_text()
    assert "class RNNStepCache(NamedTuple):" in rnn and "Back through one step." in rnn
    for path in EXPECTED:
        original = (REFERENCE / path).read_text().splitlines()
        student = (out / "scratch" / path).read_text().splitlines()
        regions = [r for r in skeleton.regions if r.path == f"scratch/{path}"]
        inside = [line for r in regions for line in original[r.begin:r.end - 1]
                  if not line.strip().startswith("#")]
        for line in inside:  # no line of a solution is left (but where it is given elsewhere)
            assert student.count(line) == original.count(line) - inside.count(line), line
        for region in regions:
            name = region.function.rpartition(".")[2]
            assert f'raise NotImplementedError("{name}: not written yet")' in "\n".join(student)
        assert not any("### " in line for line in student)
    readme = (out / "README.md").read_text()
    assert "`functional/lstm_cell.py`" not in readme and "`scratch/sequence.py`" in readme
    assert "| `bptt`: Backpropagation through time | 12 | `direction_backward` |" in readme


def test_the_skeleton_imports_and_raises_not_implemented(skeleton):
    probe = textwrap.dedent("""
        import numpy as np
        import scratch
        from scratch import functional as F
        assert scratch.__file__.startswith(HANDOUT)
        lstm = scratch.LSTM(3, 4, num_layers=2, bidirectional=True)
        x = np.zeros((5, 2, 3))
        for call in (lambda: lstm(x), lambda: F.gru_cell_forward(
                np.zeros((1, 2)), np.zeros((1, 3)), np.zeros((9, 2)), np.zeros((9, 3)))):
            try:
                call()
            except NotImplementedError as error:
                print("raised:", error)
    """).replace("HANDOUT", repr(str(skeleton.out)))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=skeleton.out, env=dict(os.environ, PYTHONPATH=str(skeleton.out)),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["raised: forward: not written yet",
                                        "raised: gru_cell_forward: not written yet"]


def test_the_projects_tests_fail_cleanly_on_the_skeleton(skeleton):
    # the functional tests, run against the skeleton: failures, not crashes or import errors
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly",
         str(PROJECT / "tests" / "test_functional.py")],
        capture_output=True, text=True, cwd=skeleton.out, timeout=300,
        env=dict(os.environ, PYTHONPATH=f"{skeleton.out}{os.pathsep}{PROJECT}"))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "NotImplementedError" in done.stdout and "1 failed" in done.stdout


def test_the_untouched_skeleton_grades_to_zero(skeleton):
    grade = grade_submission(skeleton.out, rubric_from_dict({"max_examples": 5}))
    assert grade.error is None and grade.score == 0 and len(grade.items) == 14
    for item in grade.items:
        assert item.failure.cause == "missing", (item.id, item.failure)
        assert "is not written yet: it raises NotImplementedError" in item.failure.problem
        assert item.cases == 1  # stopped at once, nothing to shrink


def test_the_skeleton_refuses_to_overwrite(skeleton):
    with pytest.raises(FileExistsError, match="not empty"):
        write_skeleton(skeleton.out)
