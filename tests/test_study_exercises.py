"""The exercises' checks (docs/study/exercises.md) catch the mistakes they name.

Each exercise of the page names, in its "Zoo members:" paragraph, the members of the zoo
(parity/zoo/mutants.py) that hold the mistakes students make in it. Every member is written
out as a package (``parity.zoo.materialize``), and every exercise's blocks are run against it
in a fresh interpreter whose ``scratch`` is that member's, each exercise after the page's first
block, as a student runs them. An exercise catches a member when one of its checks prints
WRONG or a block raises. The reference must pass every exercise; each member must be caught by
every exercise that names it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = (REPO / "docs" / "study" / "exercises.md", REPO / "docs" / "study" / "zh" / "exercises.md")
FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
HEADING = re.compile(r"^## (.*)$", re.M)
EXERCISE = re.compile(r"(\d+)\.\s")
ZOO = re.compile(r"(?:Zoo members|zoo 成员)\s*[:：](.*?)(?:\n\s*\n|\Z)", re.S)
NAME = re.compile(r"`([a-z][A-Za-z0-9]*_[A-Za-z0-9_]*)`")

# Runs in the child: {"root": package dir or "", "setup": [code], "exercises": {n: [code]}} on
# stdin; prints {n: why it failed, or ""} as JSON on its last line.
RUNNER = r'''
import contextlib, io, json, sys, traceback
job = json.load(sys.stdin)
if job["root"]:
    sys.path.insert(0, job["root"])
import scratch
if job["root"] and not scratch.__file__.startswith(job["root"]):
    raise SystemExit(f"scratch imported from {scratch.__file__}, not from {job['root']}")
verdicts = {}
for number, blocks in job["exercises"].items():
    namespace, printed = {"__name__": "__study_page__"}, io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            for block in job["setup"] + blocks:
                exec(compile(block, "exercises.md", "exec"), namespace)
    except Exception as error:
        verdicts[number] = f"raised {type(error).__name__}: {error}"[:300]
        continue
    wrong = [line for line in printed.getvalue().splitlines() if "WRONG" in line]
    verdicts[number] = "; ".join(wrong)[:300]
print(json.dumps(verdicts))
'''


def exercises(text: str) -> tuple[list[str], dict[str, tuple[list[str], set[str]]]]:
    """(the blocks before the first exercise, {number: (its blocks, the members it names)})."""
    heads = list(HEADING.finditer(text))
    setup_end = next(h.start() for h in heads if EXERCISE.match(h[1]))
    found = {}
    for k, head in enumerate(heads):
        number = EXERCISE.match(head[1])
        if not number:
            continue
        body = text[head.end():heads[k + 1].start() if k + 1 < len(heads) else len(text)]
        named = {n for paragraph in ZOO.findall(body) for n in NAME.findall(paragraph)}
        found[number[1]] = (FENCE.findall(body), named)
    return FENCE.findall(text[:setup_end]), found


def run(root: str, setup: list[str], blocks: dict[str, list[str]]) -> dict[str, str]:
    job = json.dumps({"root": root, "setup": setup, "exercises": blocks})
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", RUNNER], input=job, capture_output=True,
                          text=True, timeout=600, env=env, cwd=root or REPO)
    assert done.returncode == 0, f"{root}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """{member ("" for the reference): {exercise: why it was caught, or ""}}."""
    from parity.zoo import MUTANTS, materialize

    setup, found = exercises(PAGES[0].read_text(encoding="utf-8"))
    blocks = {number: code for number, (code, _) in found.items()}
    out = tmp_path_factory.mktemp("zoo")
    roots = {"": ""} | {m.name: str(materialize(m.name, out)) for m in MUTANTS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(roots, pool.map(lambda r: run(r, setup, blocks), roots.values())))
    return results


def test_the_pages_split_into_a_first_block_and_exercises_that_name_zoo_members():
    from parity.zoo import BY_NAME

    for page in PAGES:
        setup, found = exercises(page.read_text(encoding="utf-8"))
        assert len(setup) == 1 and "def check(" in setup[0] and "def expect(" in setup[0]
        assert sorted(found) == ["1", "2", "3", "4", "5"], page
        for number, (blocks, named) in found.items():
            assert blocks and named, f"{page.name}: exercise {number}"
            assert named <= set(BY_NAME), named - set(BY_NAME)
        assert set().union(*(named for _, named in found.values())) == set(BY_NAME), page
    # both editions run the same code and name the same members per exercise
    english, chinese = (exercises(p.read_text(encoding="utf-8")) for p in PAGES)
    assert english == chinese


def test_the_reference_passes_every_exercise(verdicts):
    assert verdicts[""] == {n: "" for n in verdicts[""]}, verdicts[""]


def test_every_zoo_member_is_caught_by_every_exercise_that_names_it(verdicts):
    _, found = exercises(PAGES[0].read_text(encoding="utf-8"))
    missed = [f"exercise {number} names {name} but passes it"
              for number, (_, named) in found.items() for name in sorted(named)
              if not verdicts[name][number]]
    assert not missed, "\n".join(missed)


def test_the_runner_tells_a_wrong_line_and_a_failure_from_a_pass():
    setup = ["def check(ok):\n    print('fine' if ok else 'x: WRONG')\n"]
    got = run("", setup, {"1": ["check(True)"], "2": ["check(False)"], "3": ["1 / 0"]})
    assert got["1"] == "" and "WRONG" in got["2"] and "ZeroDivisionError" in got["3"]


CELL = {"named": "named", "点名": "named", "also": "also", "顺带": "also", "": ""}
ROW = re.compile(r"^\| `([A-Za-z0-9_]+)` \|(.*)\|\s*$", re.M)


def catch_table(text: str) -> dict[str, list[str]]:
    """{member: [named, also or "" per exercise]} from the page's table."""
    return {name: [CELL[c.strip()] for c in cells.split("|")] for name, cells in ROW.findall(text)}


def test_the_pages_table_of_what_each_exercise_catches_is_what_the_runs_found(verdicts):
    from parity.zoo import BY_NAME

    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        _, found = exercises(text)
        numbers = sorted(found)
        runs = {name: ["named" if verdicts[name][n] and name in found[n][1] else
                       "MISSED" if name in found[n][1] else "also" if verdicts[name][n] else ""
                       for n in numbers] for name in BY_NAME}
        assert catch_table(text) == runs, page.name
    # the table's parser reads a changed cell as a change
    text = PAGES[0].read_text(encoding="utf-8")
    row = next(ROW.finditer(text))[0]
    changed = catch_table(text.replace(row, row.replace("named", "also", 1)))
    assert changed != catch_table(text)
