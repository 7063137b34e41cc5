"""The grading commands end to end: grade, grade-all's gradebook, the Gradescope bundle and the
command its run_autograder runs, from the bundle alone; grade-all's dead workers, the course
seed drawn per run, and the time budget of a whole submission."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import scratch
from parity.grading import cli
from parity.grading import rubric as rubric_module
from parity.grading.batch import grade_all, write_gradebook
from parity.grading.grade import grade_submission
from parity.grading.report import gradescope_results, terminal_report
from parity.grading.rubric import rubric_from_dict

REFERENCE = Path(scratch.__file__).resolve().parent
RUBRIC = {"max_examples": 4, "items": {"rnn_forward": {"weight": 4},
                                       "bptt": {"weight": 12, "visibility": "hidden"},
                                       "layer": {"weight": 8}}}
OTHERS_OFF = {"lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "rnn_backward",
              "proj_size", "sequence_forward", "lengths", "bidirectional", "multi_layer",
              "dropout"}


@pytest.fixture()
def rubric_file(tmp_path) -> Path:
    data = json.loads(json.dumps(RUBRIC))
    data["items"].update({item: {"weight": 0} for item in OTHERS_OFF})
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps(data))
    return path


def submission(root: Path, name: str, bug: tuple[str, str, str] | None = None) -> Path:
    package = root / name / "scratch"
    shutil.copytree(REFERENCE, package, ignore=shutil.ignore_patterns("__pycache__"))
    if bug:
        file, old, new = bug
        text = (package / file).read_text()
        assert text.count(old) == 1
        (package / file).write_text(text.replace(old, new))
    return root / name


BPTT_BUG = ("sequence.py", "        dh = dh_next + doutput[t]", "        dh = doutput[t] + 0.0")


def test_grade_prints_the_report_and_writes_results(tmp_path, rubric_file, capsys):
    good = submission(tmp_path, "good")
    results = tmp_path / "out" / "results.json"
    assert cli.main(["grade", str(good), "--rubric", str(rubric_file),
                     "--results", str(results)]) == 0
    assert "24 / 24 points" in capsys.readouterr().out
    assert json.loads(results.read_text())["score"] == 24

    bad = submission(tmp_path, "bad", BPTT_BUG)
    full = tmp_path / "full.json"
    assert cli.main(["grade", str(bad), "--rubric", str(rubric_file),
                     "--json", str(full)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  Backpropagation through time" in out and "Smallest failing case" in out
    assert json.loads(full.read_text())["score"] == 12


@pytest.mark.parametrize("argv, message", [
    (["grade", "{tmp}/missing"], "no scratch package"),
    (["grade", "{tmp}", "--items", "bptt,nope"], "unknown items ['nope']"),
    (["grade", "{tmp}", "--rubric", "{tmp}/r.json"], "cannot read rubric file"),
    (["grade-all", "{tmp}/missing"], "no submissions"),
    (["grade-all", "{tmp}/nowhere"], "does not exist"),
    (["skeleton", "{tmp}/sk", "--source", "{tmp}"], "must be a package directory"),
    (["gradescope-bundle", "{tmp}/bundle.tar"], "must be a .zip file"),
    (["frobnicate"], "usage"),
])
def test_bad_input_is_a_usage_error_that_says_what_is_wrong(tmp_path, capsys, argv, message):
    (tmp_path / "missing").mkdir()
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_grade_all_writes_one_gradebook(tmp_path, rubric_file, capsys):
    root = tmp_path / "submissions"
    submission(root, "alice")
    submission(root, "bob", BPTT_BUG)
    (root / "carol").mkdir()  # uploaded nothing usable
    out = tmp_path / "book"
    assert cli.main(["grade-all", str(root), "--out", str(out), "--jobs", "2",
                     "--rubric", str(rubric_file)]) == 0
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [r["submission"] for r in rows] == ["alice", "bob", "carol"]
    assert [(r["score"], r["rnn_forward"], r["bptt"], r["layer"]) for r in rows] == [
        ("24", "4", "12", "8"), ("12", "4", "0", "8"), ("0", "0", "0", "0")]
    assert "no scratch package" in rows[2]["error"]
    book = json.loads((out / "gradebook.json").read_text())
    assert book["jobs"] == 2 and book["rubric"]["max_examples"] == 4
    bob = {i["id"]: i for i in book["submissions"]["bob"]["items"]}
    assert bob["bptt"]["failure"]["function"] == "direction_backward"
    assert "FAIL" in (out / "reports" / "bob.txt").read_text()
    assert "3 submissions" in capsys.readouterr().out
    # every grade is the grader's alone: behind the uid wall a child reads what any uid can
    for path in ("gradebook.csv", "gradebook.json", "reports/bob.txt"):
        assert os.stat(out / path).st_mode & 0o777 == 0o600, path
    assert [p.name for p in out.rglob("*") if p.name.endswith(".partial")] == []


def test_the_gradescope_bundle_holds_what_gradescope_runs(tmp_path, rubric_file):
    bundle = tmp_path / "autograder.zip"
    assert cli.main(["gradescope-bundle", str(bundle), "--rubric", str(rubric_file)]) == 0
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        setup = archive.read("setup.sh").decode()
        run = archive.read("run_autograder").decode()
        rubric = json.loads(archive.read("rubric.json"))
        archive.extractall(tmp_path / "source")
    assert {"setup.sh", "run_autograder", "rubric.json", "requirements.txt",
            "scratch/__init__.py", "scratch/sequence.py", "parity/grading/child.py",
            "parity/case.py", "parity/tolerances.py"} <= names
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    for package in ("numpy", "hypothesis"):
        assert f"{package}=={metadata.version(package)}" in setup
    assert "torch" not in setup and "chmod -R go-rwx /autograder/source" in setup
    assert "/autograder/results/results.json" in run and "-m parity.grading gradescope" in run
    assert rubric["items"]["bptt"] == {"weight": 12.0, "visibility": "hidden"}

    # what run_autograder runs, from the unpacked bundle alone (not this checkout)
    source = tmp_path / "source"
    results = tmp_path / "results" / "results.json"
    env = dict(os.environ, PYTHONPATH=str(source), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "parity.grading", "gradescope",
         "--submission", str(submission(tmp_path, "upload", BPTT_BUG) / "scratch"),
         "--results", str(results), "--rubric", str(source / "rubric.json")],
        cwd=source, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "isolation: wall bwrap: each item runs in a bubblewrap wall" in done.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import parity.grading, scratch; "
         "print(parity.grading.__file__, scratch.__file__)"],
        cwd=source, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.split() == [str(source / "parity" / "grading" / "__init__.py"),
                                    str(source / "scratch" / "__init__.py")]
    written = json.loads(results.read_text())
    assert written["score"] == 12
    assert [(t["name"], t["status"], t["visibility"]) for t in written["tests"]] == [
        ("RNN cell forward", "passed", "visible"),
        ("Backpropagation through time", "failed", "hidden"),
        ("One layer: forward, backward, parameter gradients", "passed", "visible")]


# -- a worker that dies ------------------------------------------------------------------------
def grade_or_die(path, rubric, wall, audit_hooks):
    """grade_submission, but the worker process kills itself (SIGKILL, as the kernel's OOM
    killer would) grading "crash", and the first time it grades "flaky". Every call is logged
    with the worker's pid beside the submissions directory.

    "alice" finishes only after crash's first death, so that it is in flight in another worker
    when that worker dies. "flaky" dies a second after "bob" is done, so that bob's worker is
    idle then, and the regrade could be handed to it (it must not: to a fresh one)."""
    path = Path(path)
    marks = path.parent.parent
    with open(marks / "calls.log", "a") as handle:
        handle.write(f"{path.name} {os.getpid()}\n")

    def wait_for(mark: str) -> None:
        for _ in range(1200):
            if (marks / mark).exists():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{mark} never came")

    first_time = not (marks / f"{path.name}.died").exists()
    if path.name == "alice":
        wait_for("crash.died")
    if path.name == "flaky" and first_time:
        wait_for("bob.done")
        time.sleep(1)
    if path.name == "crash" or (path.name == "flaky" and first_time):
        (marks / f"{path.name}.died").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    row = grade_submission(path, rubric, wall=wall, audit_hooks=audit_hooks)
    (marks / f"{path.name}.done").touch()
    return row


ONE_ITEM = {"max_examples": 2, "seed": 7,
            "items": {item: {"weight": 0} for item in OTHERS_OFF | {"bptt", "layer"}}}


def calls_of(tmp_path) -> list[list[str]]:
    """[submission, pid of the worker] of every call of grade_or_die, in order."""
    return [line.split() for line in (tmp_path / "calls.log").read_text().splitlines()]


def test_a_worker_dead_twice_costs_its_submission_a_grader_error_and_nothing_else(tmp_path):
    root = tmp_path / "submissions"
    for name in ("alice", "crash"):
        submission(root, name)
    rubric = rubric_from_dict(ONE_ITEM)
    book = grade_all(root, rubric, jobs=2, grade=grade_or_die)
    rows = {Path(row.submission).name: row for row in book.rows}
    assert list(rows) == ["alice", "crash"]
    # the submission in flight beside the dead worker is not charged, nor graded again
    assert (rows["alice"].score, rows["alice"].error, rows["alice"].notes) == (4, None, [])
    # twice dead: every item fails with a grader error, and the student is not blamed
    crash = rows["crash"]
    assert crash.score == 0 and crash.max_score == 4
    assert crash.error.startswith("grader error: the process grading this submission died 2 "
                                  "times (killed by SIGKILL")
    assert "not of the submission" in crash.error
    assert [(item.id, item.failure.problem) for item in crash.items] == [
        ("rnn_forward", crash.error)]
    assert "grader error" in gradescope_results(crash)["tests"][0]["output"]
    calls = calls_of(tmp_path)
    assert sorted(name for name, _ in calls) == ["alice", "crash", "crash"]
    assert len({pid for name, pid in calls if name == "crash"}) == 2

    # the gradebook is written
    paths = write_gradebook(book, rubric, tmp_path / "book")
    table = {r["submission"]: r for r in csv.DictReader(paths["csv"].open())}
    assert [(n, table[n]["score"], table[n]["rnn_forward"]) for n in table] == [
        ("alice", "4", "4"), ("crash", "0", "0")]
    assert table["crash"]["error"] == crash.error
    saved = json.loads(paths["json"].read_text())["submissions"]
    assert saved["crash"]["items"][0]["failure"]["problem"].startswith("grader error")


def test_a_submission_whose_worker_died_is_graded_again_in_a_fresh_worker(tmp_path):
    root = tmp_path / "submissions"
    for name in ("bob", "flaky"):
        submission(root, name)
    book = grade_all(root, rubric_from_dict(ONE_ITEM), jobs=2, grade=grade_or_die)
    bob, flaky = book.rows
    assert (bob.score, bob.notes, flaky.score, flaky.error) == (4, [], 4, None)
    assert flaky.notes == ["graded a second time: the first process grading it was killed "
                           "by SIGKILL (the kernel's out-of-memory killer sends it)"]
    *first, (last, regrader) = calls_of(tmp_path)  # the regrade is last: flaky waits for bob
    assert (sorted(name for name, _ in first), last) == (["bob", "flaky"], "flaky")
    # bob's worker was idle when flaky's died: the regrade went to a new process all the same
    assert regrader not in {pid for _, pid in first}


# -- the course seed ---------------------------------------------------------------------------
def test_without_a_seed_each_run_draws_a_secret_one_that_a_regrade_reproduces(
        tmp_path, rubric_file, capsys, monkeypatch):
    drawn = iter([1_234_567_891, 42])
    monkeypatch.setattr(rubric_module, "fresh_seed", lambda: next(drawn))
    bad = submission(tmp_path, "bad", BPTT_BUG)
    runs = []
    for argv in ([], [], ["--seed", "1234567891"]):
        results, full = tmp_path / f"results{len(runs)}.json", tmp_path / f"full{len(runs)}.json"
        assert cli.main(["grade", str(bad), "--rubric", str(rubric_file), "--results",
                         str(results), "--json", str(full), *argv]) == 1
        runs.append((json.loads(full.read_text()), results.read_text(),
                     capsys.readouterr().out))
    (first, student, report), (second, _, _), (again, _, again_report) = runs
    assert (first["seed"], first["seed_drawn"]) == (1_234_567_891, True)
    assert (second["seed"], second["seed_drawn"]) == (42, True)  # a fresh one each run
    assert "seed 1234567891: drawn for this run (the rubric sets none); --seed 1234567891 " \
           "meets the same cases" in report
    # the seed a report names meets the same cases again: the same failing case, shrunk alike
    assert (again["seed"], again["seed_drawn"]) == (1_234_567_891, False)
    assert "seed 1234567891: set by the rubric or --seed" in again_report
    assert [(i["id"], i["cases"], i["failure"]) for i in again["items"]] == \
        [(i["id"], i["cases"], i["failure"]) for i in first["items"]]
    # ...and never reaches the student
    assert "seed" not in json.loads(student) and "1234567891" not in student


def test_a_given_seed_reproduces_its_cases_exactly_and_a_bad_one_is_refused(tmp_path, capsys):
    bad = submission(tmp_path, "bad", BPTT_BUG)
    data = json.loads(json.dumps(ONE_ITEM)) | {"max_examples": 5}
    data["items"].update({"bptt": {"weight": 12}, "rnn_forward": {"weight": 0}})
    grades = [grade_submission(bad, rubric_from_dict(data | {"seed": seed}))
              for seed in (99, 99, 100)]
    cases = [(g.seed, g.seed_drawn, g.items[0].cases, g.items[0].failure.case) for g in grades]
    assert cases[0] == cases[1] and cases[0][:2] == (99, False)
    assert cases[2][0] == 100
    assert cli.main(["grade", str(bad), "--seed", str(2**32)]) == cli.USAGE_ERROR
    assert "seed must be an int in 0..2**32-1, got 4294967296" in capsys.readouterr().err


def test_the_real_draw_is_secret_and_in_range():
    seeds = {REAL_FRESH_SEED() for _ in range(8)}
    assert len(seeds) > 1 and all(0 < s < 2**32 for s in seeds)


REAL_FRESH_SEED = rubric_module.fresh_seed  # before any test replaces it


def test_grade_all_draws_one_seed_for_the_run_and_keeps_it_from_the_reports(
        tmp_path, rubric_file, capsys, monkeypatch):
    monkeypatch.setattr(rubric_module, "fresh_seed", lambda: 3_141_592_653)
    root = tmp_path / "submissions"
    submission(root, "alice")
    submission(root, "bob", BPTT_BUG)
    out = tmp_path / "book"
    assert cli.main(["grade-all", str(root), "--out", str(out), "--jobs", "2",
                     "--rubric", str(rubric_file)]) == 0
    assert "seed 3141592653: drawn for this run" in capsys.readouterr().out
    book = json.loads((out / "gradebook.json").read_text())
    assert (book["seed"], book["seed_drawn"], book["rubric"]["seed"]) == (3_141_592_653, True,
                                                                          3_141_592_653)
    assert {name: (row["seed"], row["seed_drawn"]) for name, row in
            book["submissions"].items()} == {"alice": (3_141_592_653, True),
                                             "bob": (3_141_592_653, True)}
    for report in (out / "reports").iterdir():  # a report may go to its student
        assert "3141592653" not in report.read_text()


# -- the time of a whole submission ------------------------------------------------------------
SLOW = """

import time as _time

_honest_step = rnn_step_forward


def rnn_step_forward(*args, **kwargs):  # right, and far too slow
    _time.sleep(3)
    return _honest_step(*args, **kwargs)
"""


def test_a_submission_that_spends_its_time_budget_fails_the_rest_for_that_reason(tmp_path):
    slow = submission(tmp_path, "slow")
    with open(slow / "scratch" / "functional" / "rnn_cell.py", "a") as handle:
        handle.write(SLOW)
    items = ("rnn_forward", "lstm_forward", "gru_forward")
    rubric = rubric_from_dict({
        "max_examples": 3, "seed": 5,
        "limits": {"submission_seconds": 1, "case_seconds": 8},
        "items": {item: {"weight": 0 if item not in items else 1}
                  for item in OTHERS_OFF | {"rnn_forward", "bptt", "layer"}}})
    grade = grade_submission(slow, rubric)
    assert [item.id for item in grade.items] == list(items) and grade.score == 0
    budget = "the time limit for the whole submission (1 s, every item together) was used up"
    first, *rest = grade.items
    assert first.failure.cause == "limit"
    assert first.failure.problem == f"{budget} while this item was graded"
    for item in rest:  # not started at all: no child, no case, nothing else to blame
        assert (item.failure.problem, item.failure.cause, item.cases, item.seconds) == (
            f"{budget} before this item could be graded", "limit", 0, 0.0)
    assert "used up before this item could be graded" in terminal_report(grade)
