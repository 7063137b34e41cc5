"""Rubric files are validated before any grading: malformed files, unknown keys and bad
values are refused with every problem named; and the grading path never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parity.grading import rubric as rubric_module
from parity.grading.rubric import (
    DEFAULT_SUBMISSION_SECONDS,
    VISIBILITIES,
    default_rubric,
    load_rubric,
    rubric_from_dict,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("suffix, text, message", [
    (".toml", "max_examples = 7\n[items.bptt\nweight = 3\n", "is not valid TOML"),
    (".toml", 'max_examples = "seven"\n', "max_examples must be an int in 1..10000"),
    (".json", '{"items": {"bptt": {"weight": 3}', "is not valid JSON"),
    (".json", "[1, 2]", "expected a table of settings, got list"),
])
def test_a_malformed_rubric_file_is_refused_with_the_reason(tmp_path, suffix, text, message):
    path = tmp_path / f"rubric{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        load_rubric(path)
    assert str(path) in str(error.value)


def test_unknown_keys_are_refused_at_every_level(tmp_path):
    path = tmp_path / "rubric.toml"
    path.write_text('shuffle = 3\n[limits]\nwall_seconds = 5\n'
                    '[items.bptt]\nweight = 3\npoints = 4\n[items.attention]\nweight = 1\n')
    with pytest.raises(ValueError) as error:
        load_rubric(path)
    message = str(error.value)
    for part in ("unknown keys ['shuffle'] (known: max_examples, seed, limits, items)",
                 "unknown limits ['wall_seconds']",
                 "items.bptt: unknown keys ['points'] (known: weight, visibility)",
                 "unknown item 'attention'"):
        assert part in message, message


@pytest.mark.parametrize("visibility", ["secret", "", "Visible", 1])
def test_a_bad_visibility_is_refused(tmp_path, visibility):
    path = tmp_path / "rubric.json"
    path.write_text(json.dumps({"items": {"lengths": {"visibility": visibility}}}))
    with pytest.raises(ValueError) as error:
        load_rubric(path)
    assert (f"items.lengths.visibility must be one of {', '.join(VISIBILITIES)}, got "
            f"{visibility!r}") in str(error.value)


def test_every_visibility_gradescope_knows_is_accepted(tmp_path):
    for visibility in VISIBILITIES:
        path = tmp_path / f"{visibility}.json"
        path.write_text(json.dumps({"items": {"lengths": {"visibility": visibility}}}))
        entries = {e.id: e for e in load_rubric(path).entries}
        assert entries["lengths"].visibility == visibility


def test_a_rubric_without_a_seed_leaves_it_to_each_run(monkeypatch, tmp_path):
    assert default_rubric().seed is None
    assert rubric_from_dict({}).seed is rubric_from_dict({"seed": None}).seed is None
    assert rubric_from_dict({"seed": 0}).seed == 0  # a seed given is kept, 0 included
    monkeypatch.setattr(rubric_module, "fresh_seed", lambda: 77)
    assert default_rubric().seeded() == (rubric_from_dict({"seed": 77}), True)
    given = rubric_from_dict({"seed": 5})
    assert given.seeded() == (given, False)  # the rubric's own: nothing drawn
    assert given.seeded(6) == (rubric_from_dict({"seed": 6}), False)
    with pytest.raises(ValueError, match=r"seed must be an int in 0..2\*\*32-1, got -3"):
        given.seeded(-3)
    path = tmp_path / "rubric.json"  # what it writes reads back the same, unset or set
    for rubric in (default_rubric(), given):
        path.write_text(json.dumps(rubric.to_dict()))
        assert load_rubric(path) == rubric


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "7", True])
def test_a_bad_seed_is_refused_with_the_other_problems(seed):
    with pytest.raises(ValueError) as error:
        rubric_from_dict({"seed": seed, "max_examples": 0})
    message = str(error.value)
    assert f"seed must be an int in 0..2**32-1, got {seed!r}" in message
    assert "max_examples must be an int" in message


def test_the_time_of_a_whole_submission_is_a_limit_of_the_rubric(tmp_path):
    assert default_rubric().submission_budget == DEFAULT_SUBMISSION_SECONDS == 60
    # by default in proportion to the cases an item, never below the default
    assert rubric_from_dict({"max_examples": 100}).submission_budget == 240
    assert rubric_from_dict({"max_examples": 5}).submission_budget == 60
    path = tmp_path / "rubric.toml"
    path.write_text("max_examples = 100\n[limits]\nsubmission_seconds = 30\ncase_seconds = 2\n")
    rubric = load_rubric(path)
    assert (rubric.submission_budget, rubric.limits.case_seconds) == (30, 2)
    assert rubric.to_dict()["limits"]["submission_seconds"] == 30
    same = tmp_path / "rubric.json"
    same.write_text(json.dumps(rubric.to_dict()))
    assert load_rubric(same) == rubric


@pytest.mark.parametrize("value", [0, -5, float("nan"), float("inf"), "60", True])
def test_a_bad_submission_time_is_refused(value):
    with pytest.raises(ValueError) as error:
        rubric_from_dict({"limits": {"submission_seconds": value, "nap_seconds": 1}})
    message = str(error.value)
    assert f"limits.submission_seconds must be a positive number, got {value!r}" in message
    assert "unknown limits ['nap_seconds'] (known: case_seconds, item_seconds, " \
           "start_seconds, memory_mb, file_mb, submission_seconds)" in message


PROGRAM = """
import importlib.abc, json, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name == "torch_impl":
            raise ImportError("torch is not allowed here: " + name)
sys.meta_path.insert(0, Refuse())
from parity.grading.grade import grade_submission
from parity.grading.rubric import rubric_from_dict
import scratch, pathlib
root = pathlib.Path(scratch.__file__).resolve().parent.parent
grade = grade_submission(root, rubric_from_dict({"max_examples": 2}),
                         items=["rnn_forward", "layer"])
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch"))
print(json.dumps({"score": grade.score, "max": grade.max_score, "torch": loaded}))
"""


def test_grading_never_imports_torch(tmp_path):
    """The grader (and the reference it runs) works in a process where torch cannot be
    imported, and so does `python -m parity skeleton` (the children are walled apart)."""
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] == []
    assert report["score"] == report["max"] > 0
    command = PROGRAM.split("from parity.grading.grade")[0] + (
        "import runpy\nsys.argv = ['parity', 'skeleton', sys.argv[1]]\n"
        "runpy.run_module('parity', run_name='__main__', alter_sys=True)\n")
    done = subprocess.run([sys.executable, "-c", command, str(tmp_path / "handout")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "handout" / "parity" / "check.py").is_file()
