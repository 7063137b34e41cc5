"""The grading commands end to end: grade, grade-all's gradebook, the Gradescope bundle and the
command its run_autograder runs, from the bundle alone."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import scratch
from parity.grading import cli

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
    assert "isolation: wall bwrap: each item runs in a bubblewrap sandbox" in done.stdout
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
