"""Rubric files are validated before any grading: malformed files, unknown keys and bad
values are refused with every problem named; and the grading path never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parity.grading.rubric import VISIBILITIES, load_rubric

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
    imported, and so does `python -m parity skeleton` (the children are sandboxed apart)."""
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
