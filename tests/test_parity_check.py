"""``python -m parity check``: a student's own check, run in a fresh unpack of the handout.

The check is the grader's visible part: on the reference, the untouched skeleton, a plainly
written partial submission and one wrong function, its PASS/FAIL per item equals the grader's,
and a failure reads as the grader's feedback, word for word. Without torch (made unimportable in
the child) the items of backward functions are judged against finite differences of the
student's own forward, and every other item says why it is not judged.
(Every zoo member is held to the same agreement in tests/test_grading_zoo.py.)"""

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scratch
from parity import check, spec
from parity.calls import failure_text
from parity.grading.grade import grade_submission
from parity.grading.rubric import default_rubric, rubric_from_dict
from parity.grading.skeleton import write_skeleton

REFERENCE = Path(scratch.__file__).resolve().parent
# the child may use neither the project's reference nor its harness: only the handout
BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if (name.split('.')[0] in {blocked!r} or name.startswith('parity.grading')
                or name in ('torch_impl.models', 'torch_impl.cells', 'torch_impl.convert')):
            raise ImportError('blocked in this test: ' + name)
sys.meta_path.insert(0, Block())
"""
RUBRIC = rubric_from_dict({"max_examples": 4})
VISIBLE = [e.id for e in default_rubric().graded if e.visibility == "visible"]


def handout_with(tmp_path: Path, *edits: tuple[str, str, str], filled=True) -> Path:
    """A skeleton, packed and unpacked afresh, its TODOs filled with the reference's code
    (or those of the files named in ``filled``), and each (file, old, new) of edits made."""
    written = write_skeleton(tmp_path / "written")
    archive = shutil.make_archive(str(tmp_path / "handout"), "gztar", written.out)
    root = tmp_path / "unpacked"
    shutil.unpack_archive(archive, root)
    for region_file in {r.path for r in written.regions}:
        if filled is True or region_file in filled:
            (root / region_file).write_text((REFERENCE.parent / region_file).read_text())
    for relative, old, new in edits:
        path = root / "scratch" / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{relative} no longer holds {old!r} exactly once"
        path.write_text(text.replace(old, new))
    return root


def run_check(root: Path, torch: bool, *args: str, handout=True) -> subprocess.CompletedProcess:
    """The check in a child, in root; handout=False: the project's own check (on a copy
    given in args), not blocked from the project."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    prelude = BLOCK.format(blocked=[] if torch else ["torch"]) if handout else "import sys\n"
    code = prelude + ("import runpy; sys.argv = ['parity', 'check', *sys.argv[1:]]; "
                      "runpy.run_module('parity', run_name='__main__', alter_sys=True)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def verdicts(out: str) -> dict[str, tuple[str, str]]:
    """{item id: (PASS / FAIL / NOT JUDGED, the text under it)} from the check's output."""
    found: dict[str, tuple[str, str]] = {}
    current = None
    for line in out.splitlines():
        match = re.match(r"^(PASS|FAIL|NOT JUDGED)  .* \[(\w+)\]", line)
        if match:
            current = match.group(2)
            found[current] = (match.group(1), "")
        elif current and line.startswith("    "):
            status, text = found[current]
            found[current] = (status, (text + "\n" if text else "") + line[4:])
    return found


def grader_verdicts(root: Path) -> dict[str, tuple[str, str]]:
    grade = grade_submission(root, RUBRIC, items=VISIBLE)
    assert grade.error is None
    return {item.id: ("PASS", "") if item.passed else
            ("FAIL", failure_text(item.failure, spec.ITEMS_BY_ID[item.id]))
            for item in grade.items}


def assert_check_agrees_with_grader(root: Path, run: subprocess.CompletedProcess) -> dict:
    mine, graders = verdicts(run.stdout), grader_verdicts(root)
    assert set(mine) == set(graders) == set(VISIBLE), run.stdout + run.stderr
    for item_id, verdict in graders.items():
        assert mine[item_id] == verdict, (item_id, mine[item_id], verdict)
    return mine


WRONG = ("functional/gru_cell.py", "    db_hh = dgh.sum(axis=0) if has_bias",
         "    db_hh = dx_proj.sum(axis=0) if has_bias")


@pytest.mark.parametrize("what", ["reference", "skeleton", "partial", "wrong"])
def test_the_check_says_what_the_grader_says(tmp_path, what):
    if what == "skeleton":
        root = handout_with(tmp_path, filled=())
    elif what == "partial":  # the cells written plainly, the loop and the layer not yet
        root = handout_with(tmp_path, filled=("scratch/functional/rnn_cell.py",
                                               "scratch/functional/gru_cell.py"))
    else:
        root = handout_with(tmp_path, *([WRONG] if what == "wrong" else []))
    run = run_check(root, torch=True)
    found = assert_check_agrees_with_grader(root, run)
    failing = {k for k, (status, _) in found.items() if status == "FAIL"}
    assert run.returncode == (1 if failing else 0), run.stdout + run.stderr
    expected = {"reference": set(), "skeleton": set(VISIBLE), "wrong": {"gru_backward"},
                "partial": set(VISIBLE) - {"rnn_forward", "rnn_backward", "gru_forward",
                                           "gru_backward"}}[what]
    assert failing == expected, run.stdout
    if what == "wrong":  # the grader's words: the function, the value, where, the case
        text = found["gru_backward"][1]
        assert re.match(r"gru_cell_backward returned its result.db_hh: differs at index \[\d+\]: "
                        r"expected \S+, got \S+ \(off by \S+; allowed 1\.0e-10\)", text), text
        assert "\nSmallest failing case: GRU, B=1, input_size=1, hidden_size=1" in text


# a student's own names for the arguments of a cell function and of the layer's _accumulate
RENAMED = (("functional/gru_cell.py", "def gru_cell_forward(x, h_prev,",
            "def gru_cell_forward(inputs, h_prev,"),
           ("functional/gru_cell.py", "    x_proj = x @ W_ih.T  # (B, 3H)  {#gru-cell-x-proj}",
            "    x_proj = inputs @ W_ih.T  # (B, 3H)  {#gru-cell-x-proj}"),
           ("functional/gru_cell.py", "GRUCellCache(x, W_ih", "GRUCellCache(inputs, W_ih"),
           ("recurrent.py", "def _accumulate(self, layer, direction, X, dx_proj, rec)",
            "def _accumulate(self, lay, direction, inputs, dx_proj, loop_grads)"),
           ("recurrent.py", "sfx = self._suffix(layer, direction)\n        grads = self._grads",
            "sfx = self._suffix(lay, direction)\n        grads = self._grads"),
           ("recurrent.py", "@ flatten_steps(X)", "@ flatten_steps(inputs)"),
           ("recurrent.py", "rec.dW_hh", "loop_grads.dW_hh"),
           ("recurrent.py", "rec.db_hh", "loop_grads.db_hh"),
           ("recurrent.py", "rec.dW_hr", "loop_grads.dW_hr"))


def test_arguments_are_handed_over_by_place_whatever_their_names(tmp_path):
    """A student who names an argument otherwise than the skeleton is graded on their code:
    the check, as the grader, hands each argument its value by its place, and stands in for a
    function (here _accumulate, under the loop and the layer) by its place too."""
    root = handout_with(tmp_path, *RENAMED)
    run = run_check(root, torch=True)
    found = assert_check_agrees_with_grader(root, run)
    assert {k for k, (status, _) in found.items() if status != "PASS"} == set(), run.stdout
    assert run.returncode == 0, run.stdout + run.stderr


def test_without_torch_backward_items_are_judged_by_finite_differences(tmp_path):
    root = handout_with(tmp_path, WRONG)
    run = run_check(root, torch=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "torch is not installed" in run.stdout
    found = verdicts(run.stdout)
    assert set(found) == set(VISIBLE)
    backward_only = {"rnn_backward", "lstm_backward", "gru_backward", "bptt"}
    for item_id, (status, text) in found.items():
        if item_id not in backward_only:
            assert status == "NOT JUDGED" and "invisible to finite differences" in text
        else:
            assert status == ("FAIL" if item_id == "gru_backward" else "PASS"), run.stdout
    assert "against central differences of your own forward" in found["gru_backward"][1]


def test_without_torch_a_forward_that_is_no_number_leaves_its_backward_not_judged(tmp_path):
    """Central differences of a forward that gives NaN are NaN: they judge nothing, and the
    check says so instead of passing or failing the backward."""
    root = handout_with(tmp_path, ("functional/rnn_cell.py", "    h = act(pre)  # (B, H)",
                                   "    h = act(pre) * np.nan  # (B, H)"))
    run = run_check(root, False, "--only", "rnn_backward,gru_backward")
    found = verdicts(run.stdout)
    assert found["rnn_backward"][0] == "NOT JUDGED", run.stdout
    assert "rnn_step_forward gives a NaN or an infinity" in found["rnn_backward"][1], run.stdout
    assert found["gru_backward"][0] == "PASS", run.stdout


def test_a_wrong_step_function_costs_only_its_items(tmp_path):
    """The loop over time and the layer run torch's step functions in its place."""
    root = handout_with(tmp_path, ("functional/rnn_cell.py",
                                   "    dh_prev = dpre @ W_hh  # (B, H)",
                                   "    dh_prev = dpre @ W_hh.T  # (B, H)"))
    run = run_check(root, True, "--only", "rnn_backward,bptt,layer")
    found = verdicts(run.stdout)
    assert {k: v[0] for k, v in found.items()} == {"rnn_backward": "FAIL", "bptt": "PASS",
                                                   "layer": "PASS"}, run.stdout


def test_the_handout_ships_the_check_and_no_reference(tmp_path):
    written = write_skeleton(tmp_path / "handout")
    parity_files = {f for f in written.files if not f.startswith("scratch/")}
    assert parity_files == {"README.md", "torch_impl/__init__.py", "torch_impl/equations.py",
                            f"parity/{spec.OUTPUTS_FILE}", f"parity/{spec.VISIBLE_FILE}",
                            "parity/__init__.py", "parity/__main__.py",
                            *(f"parity/{name}" for name in
                              ("check.py", "spec.py", "case.py", "calls.py", "diff.py",
                               "tolerances.py"))}
    root = written.out
    assert (root / "parity" / spec.VISIBLE_FILE).read_text().split() == VISIBLE
    readme = (root / "README.md").read_text()
    assert "python -m parity check" in readme and "pip install numpy torch" in readme
    for path in parity_files - {"README.md"}:  # NumPy, the standard library, torch
        if path.endswith(".py"):
            tree = ast.parse((root / path).read_text())
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                     for a in n.names} | {n.module for n in ast.walk(tree)
                                          if isinstance(n, ast.ImportFrom)}
            assert not {n for n in names if n and (n.startswith("parity.grading")
                                                   or n == "hypothesis")}, path


def test_check_refuses_a_directory_without_scratch(tmp_path, capsys):
    assert check.main([str(tmp_path)]) == 2
    assert "holds no scratch/ package" in capsys.readouterr().err


def test_a_plain_tuple_is_read_by_position_where_a_named_tuple_is_expected():
    """A step backward that returns (dpre, dh_prev) as a plain tuple is judged on its values,
    by the grader and the check alike, not crashed on for want of field names."""
    import numpy as np

    from parity.diff import first_divergence
    from scratch.functional.rnn_cell import RNNStepGrads

    dpre, dh_prev = np.ones((2, 3)), np.zeros((2, 3))
    expected = RNNStepGrads(dpre, dh_prev)
    assert first_divergence(expected, (dpre.copy(), dh_prev.copy()), "its result", 1e-12) is None
    wrong = first_divergence(expected, (dpre.copy(), dh_prev + 1.0), "its result", 1e-12)
    assert wrong is not None and "dh_prev" in str(wrong)
    short = first_divergence(expected, (dpre,), "its result", 1e-12)
    assert short is not None and "RNNStepGrads with fields dpre, dh_prev" in str(short)
