"""Hostile submissions: each is contained and earns nothing it did not earn.

The wall is the kernel's (``walls``: bubblewrap namespaces, a uid of the child's own); the
tests marked ``wall`` run with the child's audit hook switched off, so that what they show is
what the wall alone contains. The new attack classes are in test_grading_attacks.py.

Every submission here is the reference with one function, ``rnn_step_forward``, replaced by
code that tries to cheat or to break the grader (appended to ``functional/rnn_cell.py``, so
``rnn_cell_forward`` and the package's re-exports use it too), or with hostile code run when
the package is imported. Each is graded on two items: ``rnn_forward``, which grades the
hostile function and must score nothing, with the reason in its feedback; and
``gru_backward``, earned honestly, which must keep its points, except where the package
itself cannot be imported.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

import scratch
from parity.grading.grade import grade_submission
from parity.grading.report import gradescope_results, write_json
from parity.grading.rubric import rubric_from_dict

REFERENCE = Path(scratch.__file__).resolve().parent
# the default time limits: an honest item must not fail because a busy machine is slow
FAST = rubric_from_dict({"max_examples": 5, "limits": {"memory_mb": 512}})
# a short case limit, for the one submission that never finishes (the limit is what it hits)
TIGHT = rubric_from_dict({"max_examples": 5, "limits": {"case_seconds": 3, "memory_mb": 512}})
SIGNATURE = 'def rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity="tanh", **kw):\n'


def make_submission(root: Path, body: str, *, at_import: str = "") -> Path:
    """The reference, with rnn_step_forward replaced by ``body`` (and ``at_import`` run when
    the package is imported)."""
    package = root / "sub" / "scratch"
    shutil.copytree(REFERENCE, package, ignore=shutil.ignore_patterns("__pycache__"))
    if body:
        with open(package / "functional" / "rnn_cell.py", "a") as handle:
            handle.write("\n\n" + SIGNATURE + textwrap.indent(textwrap.dedent(body), "    "))
    if at_import:
        with open(package / "__init__.py", "a") as handle:
            handle.write("\n" + textwrap.dedent(at_import))
    return root / "sub"


def grade(path: Path, **kwargs):
    result = grade_submission(path, FAST, items=["rnn_forward", "gru_backward"], **kwargs)
    by_id = {item.id: item for item in result.items}
    return result, by_id["rnn_forward"], by_id["gru_backward"]


def feedback_of(item) -> str:
    assert item.failure is not None, f"{item.id} passed but should not have"
    return item.failure.problem + " " + " ".join(item.notes)


def assert_contained(path: Path, *reasons: str, **kwargs) -> str:
    result, hostile, honest = grade(path, **kwargs)
    assert hostile.score == 0 and not hostile.passed
    text = feedback_of(hostile)
    for reason in reasons:
        assert reason in text, f"expected {reason!r} in the feedback: {text}"
    assert honest.passed and honest.score == honest.weight, honest.failure
    assert result.score == honest.weight
    return text


def test_the_unmodified_reference_earns_both_items(tmp_path):
    result, hostile, honest = grade(make_submission(tmp_path, ""))
    assert hostile.passed and honest.passed and result.score == result.max_score


def test_importing_torch_is_refused(tmp_path):
    body = """
    import torch
    h = torch.tanh(torch.as_tensor(x_proj + h_prev @ W_hh.T + b_hh)).numpy()
    return h, RNNStepCache(h_prev, h, nonlinearity)
    """
    assert_contained(make_submission(tmp_path, body), "ImportError", "blocked: import of torch")


def test_loading_the_reference_from_its_file_is_refused(tmp_path):
    body = f"""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "ref_rnn_cell", {str(REFERENCE / "functional" / "rnn_cell.py")!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity, **kw)
    """
    # the reference is not in the wall's file system at all
    assert_contained(make_submission(tmp_path, body), "FileNotFoundError")


def test_importing_the_reference_through_sys_path_is_refused(tmp_path):
    body = f"""
    import importlib, sys
    for name in [m for m in sys.modules if m == "scratch" or m.startswith("scratch.")]:
        del sys.modules[name]
    sys.path[:] = [{str(REFERENCE.parent)!r}] + [p for p in sys.path if "grading-" not in p]
    reference = importlib.import_module("scratch.functional.rnn_cell")
    return reference.rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity, **kw)
    """
    assert_contained(make_submission(tmp_path, body), "No module named 'scratch'")


def test_sys_exit_zero_scores_nothing(tmp_path):
    assert_contained(make_submission(tmp_path, "import sys\nsys.exit(0)\n"),
                     "called sys.exit(0)")


def test_os_exit_ends_only_the_child(tmp_path):
    assert_contained(make_submission(tmp_path, "import os\nos._exit(0)\n"),
                     "exited with status 0")


def test_an_endless_loop_hits_the_time_limit(tmp_path):
    path = make_submission(tmp_path, "while True:\n    pass\n")
    (hostile,) = grade_submission(path, TIGHT, items=["rnn_forward"]).items
    assert hostile.score == 0 and not hostile.passed
    assert "time limit of 3 s" in feedback_of(hostile)


def test_unbounded_allocation_hits_the_memory_limit(tmp_path):
    body = """
    import numpy as np
    hoard = []
    while True:
        hoard.append(np.ones(1 << 24))
    """
    assert_contained(make_submission(tmp_path, body), "out of memory")


def test_writing_a_results_file_has_no_effect(tmp_path):
    results = tmp_path / "results" / "results.json"
    results.parent.mkdir()  # as /autograder/results is, on Gradescope
    forged = json.dumps({"score": 100, "tests": []})
    body = f"""
    import os
    for path in ({str(results)!r}, "results.json", "/autograder/results/results.json"):
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w") as handle:
                handle.write({forged!r})
        except OSError:
            pass
    return h_prev, RNNStepCache(h_prev, h_prev, nonlinearity)
    """
    path = make_submission(tmp_path, body)
    assert_contained(path, "returned h: differs", audit_hooks=False)
    assert not results.exists()  # the forged file was never written...
    result, _, _ = grade(path)
    write_json(gradescope_results(result), results)  # ...and the grader writes the real one
    written = json.loads(results.read_text())
    assert written["score"] == result.score < 100
    assert [t["status"] for t in written["tests"]] == ["failed", "passed"]


def test_patching_numpy_comparisons_changes_nothing(tmp_path):
    body = """
    import numpy as np
    np.allclose = np.isclose = np.array_equal = lambda *args, **kwargs: True
    np.abs = np.absolute = lambda x, *args, **kwargs: 0.0 * x
    h = np.zeros_like(h_prev)
    return h, RNNStepCache(h_prev, h, nonlinearity)
    """
    assert_contained(make_submission(tmp_path, body), "returned h: differs",
                     "replaced numpy.allclose", "replaced numpy.abs")


def test_signalling_the_grader_or_starting_processes_is_refused(tmp_path):
    body = """
    import os, signal
    for attempt in (lambda: os.kill(os.getppid(), signal.SIGKILL),
                    lambda: os.system("true"), os.fork):
        try:
            attempt()
        except PermissionError:
            pass
    raise RuntimeError("tried everything")
    """
    text = assert_contained(make_submission(tmp_path, body), "tried everything")
    for event in ("os.kill", "os.system", "os.fork"):
        assert f"blocked: {event}" in text


def test_hostile_code_at_import_scores_nothing_anywhere(tmp_path):
    path = make_submission(tmp_path, "", at_import="import os\nos._exit(0)\n")
    result, hostile, honest = grade(path)
    assert result.score == 0
    for item in (hostile, honest):
        assert "exited with status 0" in item.failure.problem


def test_no_child_outlives_grading(tmp_path, leased):
    # the child sleeps when killed; afterwards no process runs as a uid its children had,
    # and no wall of this process is left over (not even as a zombie)
    grade(make_submission(tmp_path, "import time\ntime.sleep(60)\n"))
    assert len(leased) == 2 or os.geteuid() != 0
    assert wall_processes(leased) == []
    children = [pid for pid, (ppid, _) in processes().items() if ppid == str(os.getpid())]
    assert [pid for pid in children if b"bwrap" in command_line(pid)] == []


def command_line(pid: str) -> bytes:
    try:
        return (Path("/proc") / pid / "cmdline").read_bytes()
    except OSError:
        return b""


def processes() -> dict:
    """pid -> (parent pid, uid) of every process this machine shows."""
    found = {}
    for pid in os.listdir("/proc"):
        try:
            status = (Path("/proc") / pid / "status").read_text()
        except (OSError, ValueError):
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        found[pid] = (fields["PPid"].strip(), int(fields["Uid"].split()[0]))
    return found


def wall_processes(uids) -> list:
    """Processes running as one of these leased uids (as root; elsewhere children run in a
    user namespace of their own, under the grader's uid, and the PID namespace ends them)."""
    if os.geteuid() != 0:
        return []
    return [pid for pid, (_, uid) in processes().items() if uid in set(uids)]


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_submission_layouts(tmp_path, layout):
    path = make_submission(tmp_path, "")
    if layout == "flat":
        path = path / "scratch"
    result, hostile, honest = grade(path)
    assert result.score == result.max_score


def test_a_directory_without_the_package_is_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    result = grade_submission(tmp_path / "empty", FAST, items=["rnn_forward"])
    assert result.error and "no scratch package" in result.error
    assert result.score == 0


def test_without_the_wall_the_hooks_still_refuse_and_the_report_says_unsafe(tmp_path):
    from parity.grading.report import terminal_report
    from parity.grading.session import Wall

    body = """
    import os, signal
    for attempt in (lambda: os.kill(os.getppid(), signal.SIGKILL), os.fork):
        try:
            attempt()
        except PermissionError:
            pass
    raise RuntimeError("tried everything")
    """
    path = make_submission(tmp_path, body)
    assert_contained(path, "tried everything", "blocked: os.kill", "blocked: os.fork",
                     wall=Wall.unsafe())
    result, _, _ = grade(path, wall=Wall.unsafe())
    assert result.unsafe
    assert terminal_report(result).splitlines()[0].startswith("UNSAFE: graded without")
    assert gradescope_results(result)["output"].startswith("UNSAFE: graded without")
