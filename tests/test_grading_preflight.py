"""The pre-flight: the reference graded on one item behind the wall before anyone is graded,
and a fault of the grading machine never charged to a student."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_grading_hostile import make_submission

import parity
from parity.grading import cli, gradescope, preflight
from parity.grading.grade import grade_submission
from parity.grading.items import Failure
from parity.grading.report import feedback
from parity.grading.rubric import rubric_from_dict
from parity.grading.session import Wall, WallUnavailable

PROJECT = Path(parity.__file__).resolve().parent.parent
FAST = rubric_from_dict({"max_examples": 3})


def test_the_reference_passes_the_preflight_behind_the_wall_and_without_it():
    result = preflight.preflight(FAST)
    assert result.ok, result.message()
    assert "full marks on rnn_forward" in result.message()
    assert preflight.preflight(FAST, Wall.unsafe()).ok


def test_wall_check_runs_the_preflight(capsys):
    assert cli.main(["wall-check"]) == 0
    out = capsys.readouterr().out
    assert "wall: starts" in out and "pre-flight: ok" in out


def test_an_item_weighted_zero_is_still_the_preflight_item():
    rubric = rubric_from_dict({"max_examples": 2, "items": {"rnn_forward": {"weight": 0}}})
    assert preflight.preflight(rubric).ok


def _failing(cause: str, problem: str):
    def grade_item(item, entry, *args, **kwargs):
        from parity.grading.grade import ItemResult

        return ItemResult(item.spec.id, item.spec.title, entry.weight, entry.visibility, 0.0, 1,
                          0.1, Failure(item.spec.title, problem, "(a case)", cause, shrunk=False))
    return grade_item


@pytest.mark.parametrize("cause, problem, advice", [
    ("limit", "did not answer within the time limit of 10 s", "raise limits.case_seconds"),
    ("limit", "the submission's process was ended by signal SIGKILL", "more memory"),
    ("wrong", "output differs", "reinstall the bundle"),
])
def test_a_preflight_short_of_full_marks_says_what_to_change(monkeypatch, cause, problem,
                                                             advice):
    monkeypatch.setattr(preflight, "grade_item", _failing(cause, problem))
    result = preflight.preflight(FAST, Wall.unsafe())
    assert not result.ok
    assert problem in result.problem and advice in result.advice
    assert result.message().startswith("pre-flight FAILED: this machine cannot grade")


def test_a_preflight_that_raises_or_finds_no_wall_fails_and_never_raises(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(preflight, "grade_item", broken)
    result = preflight.preflight(FAST, Wall.unsafe())
    assert not result.ok and "OSError: disk full" in result.problem

    def no_wall():
        raise WallUnavailable("bubblewrap is not installed")

    monkeypatch.setattr(preflight, "find_wall", no_wall)
    result = preflight.preflight(FAST)
    assert not result.ok and "bubblewrap is not installed" in result.problem


# -- a harness its children cannot read ------------------------------------------------------
def _harness_copy(root: Path) -> Path:
    source = root / "source"
    for package in ("parity", "scratch"):
        shutil.copytree(PROJECT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (source / "rubric.json").write_text(json.dumps(FAST.to_dict()))
    return source


def _run(source: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(source), OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "parity.grading", *args], cwd=source,
                          env=env, capture_output=True, text=True, timeout=180)


def test_a_source_tree_only_root_can_read_still_grades(tmp_path):
    """Gradescope's setup.sh makes the whole source 0600/0700: each child once exited with
    status 2, unable to open its runner, and every student read 'a submission must not exit
    the process'. The runner is now copied, readable, for every child."""
    source = _harness_copy(tmp_path)
    subprocess.run(["bash", "-euc", preflight.hide_harness_sh(str(source))], check=True)
    assert not os.stat(source / "parity" / "grading" / "child.py").st_mode & 0o077
    assert not os.stat(source / "rubric.json").st_mode & 0o077
    check = _run(source, "wall-check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "pre-flight: ok" in check.stdout

    results = tmp_path / "results" / "results.json"
    run = _run(source, "gradescope", "--submission", str(make_submission(tmp_path, "")),
               "--results", str(results), "--rubric", str(source / "rubric.json"))
    assert run.returncode == 0, run.stdout + run.stderr
    written = json.loads(results.read_text())
    assert written["score"] == sum(test["max_score"] for test in written["tests"]) > 0


def test_a_child_dead_before_answering_is_the_graders_fault_only_if_its_runner_is_unreadable(
        tmp_path, monkeypatch):
    path = make_submission(tmp_path, "", at_import="import os\nos._exit(3)")
    result = grade_submission(path, FAST, items=["rnn_forward", "rnn_backward"])
    failure = result.items[0].failure
    assert failure is not None and failure.cause == "import"
    assert "must not exit the process" in failure.problem and not result.grader_fault

    monkeypatch.setattr(preflight, "runner_problem", lambda wall=None: "child.py is 0600")
    result = grade_submission(path, FAST, items=["rnn_forward", "rnn_backward"])
    assert result.grader_fault
    assert all(item.failure.cause == "grader" for item in result.items)
    text = feedback(result.items[0])
    assert "not of your submission" in text and "What has to be right" not in text
    assert cli.main(["grade", str(path), "--items", "rnn_forward"]) == cli.PREFLIGHT_FAILED


def test_gradescope_grades_nothing_when_the_preflight_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(preflight, "grade_item", _failing("limit", "exited with status 2"))
    results = tmp_path / "results.json"
    code = cli.main(["gradescope", "--submission", str(make_submission(tmp_path, "")),
                     "--results", str(results)])
    assert code == cli.PREFLIGHT_FAILED
    written = json.loads(results.read_text())
    assert written["score"] == 0 and written["tests"] == []
    assert "pre-flight check failed" in written["output"] and "not your fault" in written[
        "output"]
    assert "what to change" in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path / "sub"), "--items", "rnn_forward"]) == \
        cli.PREFLIGHT_FAILED


# -- the Gradescope bundle's setup.sh ----------------------------------------------------------
def test_setup_installs_the_walls_and_fails_the_build_unless_the_preflight_passes():
    from parity.grading.rubric import default_rubric

    setup = gradescope.bundle_files(default_rubric())["setup.sh"].decode()
    install = setup.index("apt-get install")
    assert setup.index("apt-get update") < install
    for package in ("bubblewrap", "util-linux", "python3-seccomp", "python3-venv"):
        assert package in setup[install:setup.index("\n", install)]
    assert "venv --system-site-packages" in setup  # the venv sees python3-seccomp
    check = setup.index("wall-check --rubric /autograder/source/rubric.json")
    assert setup.index("chmod -R go-rwx /autograder/source") < check
    assert "chmod o+x /autograder\n" in setup  # the venv's Python and NumPy stay reachable
    assert "exit 1" in setup[check:] and "set -euo pipefail" in setup
    assert setup.index("sys.version_info") < setup.index("pip install")


@pytest.mark.parametrize("floor, fails", [((99, 0), True), ((3, 0), False)])
def test_setup_refuses_a_python_older_than_the_pins_need(monkeypatch, tmp_path, floor, fails):
    """Ubuntu 22.04's Python 3.10 has no numpy==2.4 wheel: say which base image to choose."""
    monkeypatch.setattr(gradescope, "python_floor", lambda: floor)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    done = subprocess.run(["bash", "-c", gradescope.python_check_sh()], capture_output=True,
                          text=True, env=dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin"))
    assert (done.returncode != 0) == fails
    if fails:
        assert f"need Python >= {floor[0]}.{floor[1]}" in done.stderr
        assert "Ubuntu 24.04" in done.stderr


def test_the_pins_python_floor_is_read_from_their_metadata():
    assert gradescope.python_floor() is not None
    assert gradescope.python_floor() <= sys.version_info[:2]  # this Python installed them


def test_hide_harness_leaves_nothing_of_the_tree_readable(tmp_path):
    root = tmp_path / "tree"
    grading = root / "parity" / "grading"
    grading.mkdir(parents=True)
    for name in ("child.py", "protocol.py", "grade.py"):
        (grading / name).write_text("#")
    (root / "rubric.json").write_text("{}")
    subprocess.run(["bash", "-euc", preflight.hide_harness_sh(str(root), (str(tmp_path),))],
                   check=True)
    modes = {p.relative_to(root).as_posix(): os.stat(p).st_mode & 0o777
             for p in [root, *root.rglob("*")]}
    assert modes == {".": 0o700, "parity": 0o700, "parity/grading": 0o700,
                     "parity/grading/child.py": 0o600, "parity/grading/protocol.py": 0o600,
                     "parity/grading/grade.py": 0o600, "rubric.json": 0o600}
    assert os.stat(tmp_path).st_mode & 0o001
    assert textwrap.dedent(preflight.hide_harness_sh("/x")).startswith("chmod -R go-rwx /x")
