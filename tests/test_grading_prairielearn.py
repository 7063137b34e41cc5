"""PrairieLearn: the question directory, the results.json its grader writes (every documented
field, with its type), and "gradable": false for every fault of the autograder."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import scratch
from parity.__main__ import main as parity_main
from parity.grading import cli, prairielearn, preflight, walls
from parity.grading.items import ITEMS_BY_ID, Failure
from parity.grading.rubric import load_rubric

REFERENCE = Path(scratch.__file__).resolve().parent
WRITTEN = ("rnn_cell.py", "lstm_cell.py", "gru_cell.py", "sequence.py", "recurrent.py")
RUBRIC = {"max_examples": 4, "items": {
    **{item: {"weight": 0} for item in ITEMS_BY_ID},
    "rnn_forward": {"weight": 4}, "bptt": {"weight": 12, "visibility": "hidden"},
    "layer": {"weight": 8}}}
BPTT_BUG = ("        dh = dh_next + doutput[t]", "        dh = doutput[t] + 0.0")
TEST_KEYS = {"name": str, "description": str, "points": float, "max_points": float,
             "message": str, "output": str}


def assert_valid_results(data: dict) -> None:
    """The fields of PrairieLearn's external-grading results, with their types."""
    assert len(json.dumps(data).encode()) < 1 << 20  # PrairieLearn's limit: 1 MB
    assert isinstance(data["gradable"], bool)
    assert type(data["score"]) is float and 0.0 <= data["score"] <= 1.0
    assert isinstance(data["message"], str) and data["message"]
    assert isinstance(data["output"], str)
    assert isinstance(data["tests"], list)
    for test in data["tests"]:
        assert set(test) == set(TEST_KEYS), test
        for key, kind in TEST_KEYS.items():
            assert type(test[key]) is kind, (key, test[key])
        assert 0 <= test["points"] <= test["max_points"]
    if data["gradable"]:
        total = sum(t["max_points"] for t in data["tests"])
        assert data["score"] == pytest.approx(sum(t["points"] for t in data["tests"]) / total)
    else:
        errors = data["format_errors"]
        assert isinstance(errors, list) and all(isinstance(e, str) for e in errors)


@pytest.fixture()
def rubric_file(tmp_path) -> Path:
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps(RUBRIC))
    return path


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("question")
    assert cli.main(["prairielearn-bundle", str(out), "--force", "--image", "me/grader:1",
                     "--timeout", "90"]) == 0
    return out


def uploads(root: Path, bug: tuple[str, str] | None = None) -> Path:
    """The files a student uploads: the reference's five written files, flat."""
    student = root / "student"
    student.mkdir()
    for path in REFERENCE.rglob("*.py"):
        if path.name in WRITTEN:
            shutil.copyfile(path, student / path.name)
    if bug:
        text = (student / "sequence.py").read_text()
        assert text.count(bug[0]) == 1
        (student / "sequence.py").write_text(text.replace(*bug))
    return student


def run_pl(student: Path, results: Path, rubric: Path, skeleton: Path | None,
           *extra: str) -> int:
    argv = ["prairielearn", "--student", str(student), "--results", str(results),
            "--rubric", str(rubric), *extra]
    if skeleton is not None:
        argv += ["--skeleton", str(skeleton)]
    return cli.main(argv)


# -- grading --------------------------------------------------------------------------------
def test_uploaded_files_are_graded_on_the_skeleton_item_by_item(tmp_path, rubric_file,
                                                               question):
    results = tmp_path / "results" / "results.json"
    student = uploads(tmp_path, BPTT_BUG)
    (student / "notes.txt").write_text("not code")
    (student / "helper.py").write_text("x = 1\n")
    code = run_pl(student, results, rubric_file, question / "tests" / "skeleton")
    assert code == 0
    data = json.loads(results.read_text())
    assert_valid_results(data)
    assert data["gradable"] is True and data["score"] == pytest.approx(12 / 24)
    by_name = {t["name"]: t for t in data["tests"]}
    bptt = by_name["Backpropagation through time"]
    assert (bptt["points"], bptt["max_points"]) == (0.0, 12.0)
    assert bptt["output"] == prairielearn.HIDDEN_FEEDBACK and bptt["message"] == "Failed."
    layer = by_name["One layer: forward, backward, parameter gradients"]
    assert (layer["points"], layer["message"]) == (8.0, "Passed.")
    assert layer["description"] == ITEMS_BY_ID["layer"].spec.about
    assert "helper.py is not a file of the package" in data["output"]


def test_a_visible_failure_shows_its_case_and_the_skeleton_alone_scores_zero(tmp_path,
                                                                            rubric_file,
                                                                            question):
    data = json.loads(json.dumps(RUBRIC))
    data["items"]["bptt"]["visibility"] = "visible"
    rubric_file.write_text(json.dumps(data))
    results = tmp_path / "results.json"
    assert run_pl(uploads(tmp_path, BPTT_BUG), results, rubric_file,
                  question / "tests" / "skeleton") == 0
    bptt = {t["name"]: t for t in json.loads(results.read_text())["tests"]}[
        "Backpropagation through time"]
    assert "direction_backward" in bptt["output"] and "Smallest failing case" in bptt["output"]
    assert bptt["message"] != "Failed."

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_pl(empty, results, rubric_file, question / "tests" / "skeleton") == 0
    data = json.loads(results.read_text())
    assert_valid_results(data)
    assert data["gradable"] is True and data["score"] == 0.0
    assert "no file of the package was uploaded" in data["output"]


def test_a_whole_package_is_graded_as_it_is(tmp_path, rubric_file):
    student = tmp_path / "student"
    shutil.copytree(REFERENCE, student / "scratch", ignore=shutil.ignore_patterns("__pycache__"))
    results = tmp_path / "results.json"
    assert run_pl(student, results, rubric_file, None) == 0
    data = json.loads(results.read_text())
    assert_valid_results(data)
    assert data["score"] == 1.0


def test_uploads_are_read_without_following_links(tmp_path):
    student = tmp_path / "student"
    student.mkdir()
    (student / "sequence.py").symlink_to(REFERENCE / "sequence.py")
    skeleton = tmp_path / "skeleton" / "scratch"
    shutil.copytree(REFERENCE, skeleton, ignore=shutil.ignore_patterns("__pycache__"))
    (skeleton / "sequence.py").write_text("# the skeleton's\n")
    out = tmp_path / "out"
    out.mkdir()
    package, notes = prairielearn.assemble(student, skeleton.parent, out)
    assert (package / "scratch" / "sequence.py").read_text() == "# the skeleton's\n"
    assert any("sequence.py was not read" in note for note in notes)


def test_no_package_at_all_is_not_gradable_and_names_the_problem(tmp_path, rubric_file):
    empty = tmp_path / "empty"
    empty.mkdir()
    results = tmp_path / "results.json"
    assert run_pl(empty, results, rubric_file, None) == 0
    data = json.loads(results.read_text())
    assert_valid_results(data)
    assert data["gradable"] is False and "no scratch package" in data["format_errors"][0]


# -- faults of the autograder: not gradable, never the student's ----------------------------
def _fault(data: dict, why: str) -> None:
    assert_valid_results(data)
    assert data["gradable"] is False and data["tests"] == []
    assert why in data["message"] and "not your fault" in data["message"]
    assert data["format_errors"] == [data["message"]]


def test_a_failed_preflight_is_not_gradable(tmp_path, rubric_file, monkeypatch):
    def failing(item, entry, *args, **kwargs):
        from parity.grading.grade import ItemResult

        return ItemResult(item.id, item.title, entry.weight, entry.visibility, 0.0, 0, 0.1,
                          Failure("import scratch", "exited with status 2 before answering",
                                  "(before any case)", "limit", shrunk=False))

    monkeypatch.setattr(preflight, "grade_item", failing)
    results = tmp_path / "results.json"
    code = run_pl(uploads(tmp_path), results, rubric_file, None)
    assert code == cli.PREFLIGHT_FAILED
    _fault(json.loads(results.read_text()), "pre-flight check failed")


def test_no_wall_a_bad_rubric_or_a_grader_exception_is_not_gradable(tmp_path, rubric_file,
                                                                      monkeypatch):
    from parity.grading import grade

    results = tmp_path / "results.json"
    student = uploads(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"items": {"nope": {}}}')
    assert run_pl(student, results, bad, None) == cli.USAGE_ERROR
    _fault(json.loads(results.read_text()), "rubric could not be read")

    def broken(*args, **kwargs):
        raise RuntimeError("the grader broke")

    monkeypatch.setattr(grade, "grade_submission", broken)
    with pytest.raises(RuntimeError, match="the grader broke"):
        run_pl(student, results, rubric_file, None)
    _fault(json.loads(results.read_text()), "failed while grading (RuntimeError)")

    monkeypatch.setattr(walls, "_WALL", None)
    monkeypatch.setattr(walls, "candidates", lambda: ([], ["no wall here (a test)"]))
    assert run_pl(student, results, rubric_file, None) == cli.NO_WALL
    _fault(json.loads(results.read_text()), "wall could not start")


def test_an_item_the_grader_could_not_start_makes_the_run_not_gradable(tmp_path, rubric_file,
                                                                      monkeypatch):
    student = uploads(tmp_path)
    with open(student / "rnn_cell.py", "a") as handle:  # ends the child at import...
        handle.write("\nimport os\nos._exit(3)\n")
    # ...while the grader finds its own runner out of the child's reach
    monkeypatch.setattr(preflight, "runner_problem", lambda wall=None: "child.py is 0600")
    results = tmp_path / "results.json"
    skeleton = tmp_path / "question"
    prairielearn.write_question(skeleton)
    assert run_pl(student, results, rubric_file, skeleton / "tests" / "skeleton") == \
        cli.PREFLIGHT_FAILED
    _fault(json.loads(results.read_text()), "could not start its own process")


# -- the question directory -----------------------------------------------------------------
def test_the_question_directory_holds_what_prairielearn_runs(question):
    info = json.loads((question / "info.json").read_text())
    assert info["type"] == "v3" and info["gradingMethod"] == "External"
    assert info["externalGradingOptions"] == {
        "enabled": True, "image": "me/grader:1", "entrypoint": "/grade/tests/run.sh",
        "timeout": 90, "enableNetworking": False}
    assert len(info["uuid"]) == 36 and info["title"]

    html = (question / "question.html").read_text()
    start = html.index('<pl-file-upload file-names="') + len('<pl-file-upload file-names="')
    names = html[start:html.index('"', start)].split(", ")
    assert sorted(names) == sorted(WRITTEN)
    assert "<pl-external-grader-results>" in html

    tests = question / "tests"
    run = tests / "run.sh"
    assert os.stat(run).st_mode & stat.S_IXUSR
    assert subprocess.run(["bash", "-n", str(run)]).returncode == 0
    text = run.read_text()
    assert "chmod -R go-rwx /grade/tests" in text and "exit 0" in text
    assert "--skeleton /grade/tests/skeleton" in text and "--rubric /grade/tests/rubric.json" \
        in text
    rubric = json.loads((tests / "rubric.json").read_text())
    assert rubric["seed"] != 0  # a secret seed of the course's own
    assert load_rubric(tests / "rubric.json").seed == rubric["seed"]
    assert (tests / "scratch" / "sequence.py").read_bytes() == \
        (REFERENCE / "sequence.py").read_bytes()
    assert (tests / "parity" / "grading" / "child.py").is_file()
    skeleton = (tests / "skeleton" / "scratch" / "sequence.py").read_text()
    assert "NotImplementedError" in skeleton and "BEGIN SOLUTION" not in skeleton
    docker = (question / "image" / "Dockerfile").read_text()
    assert docker.startswith("#") and "FROM ubuntu:24.04" in docker
    assert "python3-seccomp" in docker and "bubblewrap" in docker
    assert "numpy==" in docker and "hypothesis==" in docker and "torch" not in docker


def test_the_entrypoint_grades_and_always_leaves_results(tmp_path, rubric_file):
    """run.sh as PrairieLearn runs it, with /grade and the image's venv moved into tmp."""
    question = tmp_path / "question"
    prairielearn.write_question(question, load_rubric(rubric_file))
    grade = tmp_path / "grade"
    shutil.copytree(question / "tests", grade / "tests")
    shutil.copytree(uploads(tmp_path), grade / "student")
    venv = tmp_path / "venv"
    script = (question / "tests" / "run.sh").read_text().replace("/grade", str(grade))
    script = script.replace(prairielearn.VENV, str(venv))
    (tmp_path / "run.sh").write_text(script)
    env = dict(os.environ, PYTHONPATH=str(grade / "tests"), OPENBLAS_NUM_THREADS="1")
    results = grade / "results" / "results.json"

    # the wrong image: no venv where the Dockerfile puts it
    done = subprocess.run(["bash", str(tmp_path / "run.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    _fault(json.loads(results.read_text()), "could not run in this question's image")

    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    done = subprocess.run(["bash", str(tmp_path / "run.sh")], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    data = json.loads(results.read_text())
    assert_valid_results(data)
    assert data["gradable"] is True and data["score"] == 1.0, done.stdout + done.stderr
    assert not os.stat(grade / "tests" / "rubric.json").st_mode & 0o077  # hidden from children


@pytest.mark.parametrize("argv, says", [
    (["--timeout", "601"], "timeout must be an int of seconds in 1..600"),
    (["--image", "two words"], "image must be a Docker image name"),
])
def test_the_bundle_refuses_what_prairielearn_would(tmp_path, argv, says, capsys):
    assert cli.main(["prairielearn-bundle", str(tmp_path / "q"), *argv]) == cli.USAGE_ERROR
    assert says in capsys.readouterr().err


def test_the_bundle_wants_a_new_directory_and_is_wired_into_parity_cli(tmp_path, capsys):
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "keep.txt").write_text("mine")
    assert parity_main(["prairielearn-bundle", str(tmp_path / "q")]) == cli.USAGE_ERROR
    assert "not an empty directory" in capsys.readouterr().err
    assert parity_main(["prairielearn-bundle", str(tmp_path / "new")]) == 0
    assert (tmp_path / "new" / "info.json").is_file()
