"""The pre-flight: grade one item of the reference, end to end, before trusting a machine.

A grading machine can be wrong in ways no single check names: a wall that starts but whose
child cannot read its own runner (a ``chmod -R go-rwx`` over the harness), a Python or NumPy
the child's uid cannot open, a container that kills what the wall needs. Each of these made
every item of every submission fail with words that blamed the student ("a submission must not
exit the process"). So before grading, the grader grades the reference itself (this project's
``scratch/``, which is correct by construction) on one item, through the same wall, limits and
code path every submission goes through. Anything short of full marks means the machine is
wrong, not a student: nothing is graded, and the message says what is wrong with the machine
and what to change.

It costs one item (``rnn_forward``: about a third of a second here). ``wall-check`` runs it;
``gradescope`` and ``prairielearn`` run it before every submission, ``grade`` and ``grade-all``
once before grading; the Gradescope bundle's ``setup.sh`` runs it at image build, so that a
machine that cannot grade fails the build, shown to the instructor at upload time.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, replace
from pathlib import Path

from parity.grading.grade import grade_item, import_package, reference_child
from parity.grading.items import ITEMS_BY_ID
from parity.grading.rubric import Entry, Rubric, default_rubric
from parity.grading.session import (
    ChildFailure,
    Wall,
    WallUnavailable,
    find_submission_package,
    find_wall,
    numpy_dir,
    python,
)

ITEM = "rnn_forward"  # the cheapest item that still starts a child and runs real cases


@dataclass
class PreflightResult:
    """ok, or what is wrong with the machine (problem) and what to change (advice)."""

    ok: bool
    wall: str  # how children were walled in, or why there is no wall
    seconds: float
    problem: str = ""
    advice: str = ""

    def message(self) -> str:
        if self.ok:
            return (f"pre-flight: ok: the reference scored full marks on {ITEM} in "
                    f"{self.seconds:.1f} s; {self.wall}")
        return (f"pre-flight FAILED: this machine cannot grade: {self.problem}\n"
                f"what to change: {self.advice}\n"
                f"isolation: {self.wall}")


def reference_submission() -> Path:
    """The directory holding the reference ``scratch`` package (this project's root)."""
    import scratch

    return Path(scratch.__file__).resolve().parent.parent


def _unreadable(path: Path, by_path: bool) -> list[str]:
    """Why a user who is neither the owner nor in the group could not read path: the file
    without the others' read bit, or (by_path: the child opens it by its path, not through a
    bind mount) a directory above it without their search bit."""
    problems = []
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return [f"{path} cannot be read ({error.strerror})"]
    if not mode & stat.S_IROTH:
        problems.append(f"{path} is mode {stat.S_IMODE(mode):04o} (not readable by others)")
    for parent in path.parents if by_path else ():
        try:
            parent_mode = os.stat(parent).st_mode
        except OSError:
            continue
        if not parent_mode & stat.S_IXOTH:
            problems.append(f"its directory {parent} is mode {stat.S_IMODE(parent_mode):04o} "
                            "(others cannot pass through it)")
            break
    return problems


def runner_problem(wall: Wall | None = None) -> str | None:
    """What keeps a child's uid from reading the Python or NumPy it runs, or None.

    The child never runs as the grader's user (a leased uid, or nobody in a user namespace),
    so what it runs must be readable by others. The runner's two files are copied for every
    child, readable, whatever the source tree's modes; without a wall nothing here matters."""
    if wall is not None and not wall.safe:
        return None
    interpreter = wall.python if wall is not None else python()
    paths = [Path(interpreter), Path(numpy_dir()) / "__init__.py"]
    # bubblewrap binds each file into the child's own tree: only the file's mode counts there
    by_path = wall is None or wall.kind not in ("bwrap", "bwrap-userns")
    problems = [p for path in paths for p in _unreadable(path, by_path)]
    return "; ".join(dict.fromkeys(problems)) if problems else None


UNREADABLE_ADVICE = (
    "the child runs as an unprivileged uid and must be able to read the Python and NumPy it "
    "runs: chmod o+rx on them and o+x on each directory above them (o+x lets others open a "
    "file whose name they know, not list the directory; keep the reference, the rubric and "
    "the harness go-rwx).")


def _child_stderr(package: Path, rubric: Rubric, wall: Wall) -> str:
    """What a child of the reference printed before it failed to start (the reference's own
    child: nothing in it is a submission's)."""
    child = None
    try:
        child = reference_child(package, rubric.limits, wall)
        answer = import_package(child, rubric.limits.start_seconds)
        if not answer.ok:
            return f"the reference could not be imported in the child: {answer.error}"
        return ""
    except ChildFailure as failure:
        said = child.stderr_tail(600).strip() if child is not None else ""
        return failure.reason + (f"; the child printed: {said}" if said else "")
    except Exception as error:  # the diagnosis must never hide the first failure
        return f"{type(error).__name__}: {error}"
    finally:
        if child is not None:
            child.close()


def preflight(rubric: Rubric | None = None, wall: Wall | None = None) -> PreflightResult:
    """Grade the reference on one item through ``wall`` (default: the wall grading uses) with
    the rubric's limits and seed. Never raises: the result says what went wrong."""
    rubric = rubric or default_rubric()
    if rubric.seed is None:  # the reference passes any case: no secret seed is drawn for it
        rubric = replace(rubric, seed=0)
    start = time.monotonic()

    def failed(problem: str, advice: str) -> PreflightResult:
        described = "no wall" if wall is None else wall.describe()
        return PreflightResult(False, described, time.monotonic() - start, problem, advice)

    if wall is None:
        try:
            wall = find_wall()
        except WallUnavailable as error:
            return failed(f"no wall can start: {error}", "install or enable what the message "
                          "above names, then run `python -m parity wall-check` again")
    # full weight whatever the rubric gives the item (0 leaves it out of grading, not here)
    weights = {e.id: e for e in rubric.entries}
    entry = replace(weights.get(ITEM, Entry(ITEM, 1.0)), weight=1.0)
    try:
        package = find_submission_package(reference_submission())
        result = grade_item(ITEMS_BY_ID[ITEM], entry, package, rubric, wall)
    except WallUnavailable as error:
        return failed(f"the wall stopped starting: {error}",
                      "fix what the message names and run `python -m parity wall-check` again")
    except Exception as error:  # a fault of the grader's own installation
        return failed(f"grading the reference raised {type(error).__name__}: {error}",
                      "reinstall the grader (the harness, NumPy and Hypothesis at the versions "
                      "it was built with) and run `python -m parity wall-check` again")
    if result.passed:
        return PreflightResult(True, wall.describe(), time.monotonic() - start)
    failure = result.failure
    assert failure is not None
    problem = (f"the reference (correct by construction) failed the item {ITEM!r}: "
               f"{failure.problem}")
    unreadable = runner_problem(wall)
    if unreadable:
        return failed(f"{problem}; {unreadable}", UNREADABLE_ADVICE)
    if failure.cause in ("import", "limit", "grader"):
        said = _child_stderr(package, rubric, wall)
        if said:
            problem += f" (a second start: {said})"
        if "did not answer within" in failure.problem or "took longer" in failure.problem:
            advice = ("the machine is too slow for the rubric's limits, or overloaded: "
                      "raise limits.case_seconds, item_seconds and start_seconds in the "
                      "rubric, or grade fewer submissions at once")
        elif "signal" in failure.problem or "memory" in failure.problem:
            advice = ("the child was killed: give it more memory (limits.memory_mb in the "
                      "rubric, and the container's memory), or check the container's "
                      "seccomp profile and process limit (pids)")
        else:
            advice = ("the child could not start its runner or import NumPy: check that "
                      "the Python and NumPy it runs are readable by others, and that the "
                      "container allows what the wall needs (run `python -m parity "
                      "wall-check`)")
        return failed(problem, advice)
    return failed(problem, "the grader and the reference disagree: reinstall the bundle (its "
                  "NumPy and Hypothesis pins must be installed exactly)")


def hide_harness_sh(root: str, parents: tuple[str, ...] = ()) -> str:
    """Shell lines that make the tree at ``root`` (the harness, the reference, the rubric)
    readable by root only: the uid wall starts only where it is.

    parents: directories above ``root`` (a grading job's directory) that hold what a child
    does run, the virtual environment's Python and NumPy; they get the others' search bit,
    which opens no listing."""
    lines = f"chmod -R go-rwx {root}\n"
    if parents:
        lines += ("# a child runs as a uid of its own: it may pass through (not list) these\n"
                  f"chmod o+x {' '.join(parents)}\n")
    return lines
