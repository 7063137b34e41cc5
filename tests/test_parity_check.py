"""``python -m parity check``: a student's own check, run in a fresh unpack of the handout.

The handout's TODOs are filled with the reference's code but for one function written
wrongly; the check must name that function and pass every other, with torch and without it
(torch made unimportable in the child: the backward functions are then checked against
finite differences of the student's own forward)."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scratch
from parity import check, tolerances
from parity.grading.items import ITEMS_BY_ID
from parity.grading.rubric import default_rubric
from parity.grading.skeleton import write_skeleton

REFERENCE = Path(scratch.__file__).resolve().parent
# the child may use neither the project's reference nor its harness: only the handout
BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r} or name.startswith('parity.grading'):
            raise ImportError('blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def handout_with(tmp_path: Path, relative: str | None, old: str = "", new: str = "") -> Path:
    """A skeleton, packed and unpacked afresh, its TODOs filled with the reference's code,
    and in ``relative`` the text old replaced by new."""
    written = write_skeleton(tmp_path / "written")
    archive = shutil.make_archive(str(tmp_path / "handout"), "gztar", written.out)
    root = tmp_path / "unpacked"
    shutil.unpack_archive(archive, root)
    for region_file in {r.path for r in written.regions}:  # fill the TODOs
        (root / region_file).write_text((REFERENCE.parent / region_file).read_text())
    if relative is not None:
        path = root / "scratch" / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{relative} no longer holds {old!r} exactly once"
        path.write_text(text.replace(old, new))
    return root


def run_check(root: Path, torch: bool, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    blocked = ["torch_impl"] + ([] if torch else ["torch"])
    prelude = BLOCK.format(blocked=blocked)
    code = prelude + ("import runpy; sys.argv = ['parity', 'check', *sys.argv[1:]]; "
                      "runpy.run_module('parity', run_name='__main__', alter_sys=True)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def statuses(out: str) -> dict[tuple[str, str], str]:
    """{(item title, function): PASS/FAIL/SKIP} from the check's output."""
    found, title = {}, None
    for line in out.splitlines():
        match = re.match(r"^  (PASS|FAIL|SKIP)  (\S+)", line)
        if match:
            found[title, match.group(2)] = match.group(1)
        elif line and not line.startswith(" ") and not line.startswith("("):
            title = line
    return found


def graded() -> set[tuple[str, str]]:
    return {(ITEMS_BY_ID[e.id].title, f) for e in default_rubric().graded
            if e.visibility == "visible" for f in ITEMS_BY_ID[e.id].grades}


WRONG = ("functional/gru_cell.py", "    db_hh = dgh.sum(axis=0) if has_bias",
         "    db_hh = dgi.sum(axis=0) if has_bias")


@pytest.fixture(scope="module")
def wrong_handout(tmp_path_factory):
    return handout_with(tmp_path_factory.mktemp("check"), *WRONG)


def test_with_torch_the_wrong_function_fails_and_every_other_passes(wrong_handout):
    result = run_check(wrong_handout, torch=True)
    assert result.returncode == 1, result.stdout + result.stderr
    found = statuses(result.stdout)
    assert set(found) == graded()
    assert {k for k, v in found.items() if v != "PASS"} == {("GRU cell backward",
                                                             "gru_cell_backward")}
    assert "(torch " in result.stdout
    # the grader's feedback form: the function, the first value that differs, its relative
    # error, the smallest failing case
    failure = result.stdout.split("FAIL  gru_cell_backward\n")[1].splitlines()
    assert re.match(r"^ +gru_cell_backward returned db_hh\[\d+\] = \S+, expected \S+ from "
                    r"torch's autograd of the equations \(relative error \S+;", failure[0])
    assert failure[1].strip().startswith("Smallest failing case: GRU, B=1, input_size=1, "
                                         "hidden_size=1, with bias")
    assert result.stdout.rstrip().endswith("failing: gru_cell_backward (GRU cell backward)")


def test_without_torch_backward_functions_are_checked_by_finite_differences(wrong_handout):
    result = run_check(wrong_handout, torch=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "torch is not installed" in result.stdout
    found = statuses(result.stdout)
    assert set(found) == graded()
    assert {k for k, v in found.items() if v == "FAIL"} == {("GRU cell backward",
                                                             "gru_cell_backward")}
    assert "expected" in result.stdout and "from central differences of your " \
        "gru_cell_forward" in result.stdout
    for (title, function), status in found.items():
        backward = "backward" in function
        if function != "gru_cell_backward":  # forward functions need torch; backward pass
            assert status == ("PASS" if backward else "SKIP"), (title, function, status)


def test_a_wrong_step_function_is_named_alone_with_torch(tmp_path):
    """The loop over time and the layer run torch's step functions in its place."""
    root = handout_with(tmp_path, "functional/rnn_cell.py", "    dh_prev = dpre @ W_hh  # (B, H)",
                        "    dh_prev = dpre @ W_hh.T  # (B, H)")
    result = run_check(root, torch=True)
    found = statuses(result.stdout)
    assert {f for (_, f), v in found.items() if v != "PASS"} == {"rnn_step_backward"}, \
        result.stdout


def test_the_reference_passes_and_only_selects(tmp_path):
    root = handout_with(tmp_path, None)
    result = run_check(root, True, "--only", "lstm_step_backward,direction_forward")
    assert result.returncode == 0, result.stdout + result.stderr
    found = statuses(result.stdout)
    assert set(found.values()) == {"PASS"}
    assert {f for _, f in found} == {"lstm_step_backward", "direction_forward"}


def test_the_untouched_handout_fails_with_not_written_yet(tmp_path):
    root = tmp_path / "handout"
    write_skeleton(root)
    result = run_check(root, True, "--only", "rnn_step_forward")
    assert result.returncode == 1
    assert "rnn_step_forward is not written yet: it raises NotImplementedError" in result.stdout
    readme = (root / "README.md").read_text()
    assert "python -m parity check" in readme and "pip install numpy torch" in readme
    items = json.loads((root / "parity" / "check_items.json").read_text())
    assert [i["id"] for i in items] == [e.id for e in default_rubric().graded
                                        if e.visibility == "visible"]


def test_the_checker_holds_no_reference_and_the_graders_tolerance():
    assert check.TOL == tolerances.FLOAT64_TOL
    modules = set()
    for node in ast.walk(ast.parse(Path(check.__file__).read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module)
    top = {m.split(".")[0] for m in modules}
    assert top - {"parity"} <= {"__future__", "argparse", "contextlib", "importlib", "json",
                                "sys", "time", "traceback", "collections", "dataclasses",
                                "pathlib", "typing", "numpy", "torch", "warnings"}, top
    # the project's rubric, read only when no check_items.json ships beside the checker
    assert {m for m in modules if m.startswith("parity")} == {"parity.grading.items",
                                                              "parity.grading.rubric"}
    assert "import scratch" not in Path(check.__file__).read_text()


def test_check_refuses_a_directory_without_scratch(tmp_path, capsys):
    assert check.main([str(tmp_path)]) == 2
    assert "holds no scratch/ package" in capsys.readouterr().err
