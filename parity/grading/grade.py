"""Grading one submission: every item of the rubric on its own, each in its own child process.

For an item, the grader starts a child on a fresh copy of the submission, has it import the
package, and runs Hypothesis (seeded by the item's id, no example database) over the item's
cases: each case goes to the child, the reference runs here, and the answers are compared. The
first case that fails is shrunk by Hypothesis to the smallest one that still fails, and that
case is what the report shows. A case that ends the child (time, memory, an exit) or a function
that is not written yet (NotImplementedError) stops the item at once, without shrinking.

An item scores its full weight when every case passes and nothing otherwise. Scores are
decided here, from arrays compared here, after the child has been killed. Failure is the safe
default: an answer that is missing, malformed or not the submission's to give fails its item,
and nothing a child sends ends the grader.

Importing the submission has one time limit for the whole submission: once an import has
failed or hung, every later item fails at once with the same reason, without a new child.
Of each item's start, what is past an honest one's (2 s, or a quarter of the limit if less) is
charged to that one limit, so a package that imports slowly but within it loses nothing.

The whole submission has a time budget too (the rubric's ``limits.submission_seconds``): once it
is spent, the item being graded fails with that reason (unless it had already failed a case),
and so does every item after it, without a child. A case never waits past the budget.

The cases are the rubric's seed's; where the rubric sets none, a fresh secret seed is drawn for
the run and recorded in the result (``seed``, ``seed_drawn``) for the instructor, never in what
a student is shown.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, example, given, seed, settings

from parity.calls import error_site
from parity.grading import oracles, protocol
from parity.grading.items import ITEMS_BY_ID, Failure, Item
from parity.grading.rubric import Entry, Rubric, default_rubric
from parity.grading.session import (
    Child,
    ChildFailure,
    Limits,
    Wall,
    WallUnavailable,
    find_submission_package,
    find_wall,
)


@dataclass
class ItemResult:
    id: str
    title: str
    weight: float
    visibility: str
    score: float
    cases: int  # how many cases ran (shrinking included)
    seconds: float
    failure: Failure | None = None
    notes: list[str] = field(default_factory=list)
    start_seconds: float = 0.0  # of seconds: starting the child and importing the submission

    @classmethod
    def failed(cls, entry: Entry, failure: Failure) -> ItemResult:
        """An item failed before any case, without a child of its own."""
        return cls(entry.id, ITEMS_BY_ID[entry.id].spec.title, entry.weight, entry.visibility, 0.0,
                   0, 0.0, failure, list(failure.notes))

    @property
    def passed(self) -> bool:
        return self.failure is None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["passed"] = self.passed
        return data


@dataclass
class GradeResult:
    submission: str
    items: list[ItemResult]
    seconds: float
    error: str | None = None  # the submission could not be graded at all (no package)
    notes: list[str] = field(default_factory=list)  # for the instructor
    wall: str = ""  # how the children were walled in (Wall.describe)
    unsafe: bool = False  # graded without the wall (--unsafe-no-wall)
    seed: int | None = None  # the course seed the cases were drawn with (the instructor's)
    seed_drawn: bool = False  # drawn for this run: the rubric set none

    @property
    def score(self) -> float:
        return float(sum(item.score for item in self.items))

    @property
    def max_score(self) -> float:
        return float(sum(item.weight for item in self.items))

    @property
    def grader_fault(self) -> bool:
        """Some item failed through a fault of the grading machine, not of the submission."""
        return any(item.failure is not None and item.failure.cause == "grader"
                   for item in self.items)

    def to_dict(self) -> dict:
        return {"submission": self.submission, "score": self.score,
                "max_score": self.max_score, "seconds": round(self.seconds, 3),
                "error": self.error, "notes": self.notes, "wall": self.wall,
                "unsafe": self.unsafe, "seed": self.seed, "seed_drawn": self.seed_drawn,
                "items": [item.to_dict() for item in self.items]}


@dataclass(frozen=True)
class Budget:
    """The time the whole submission may take: ``seconds`` from its start, until ``deadline``
    (time.monotonic)."""

    seconds: float
    deadline: float

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def spent(self) -> bool:
        return self.left() <= 0

    def failure(self, title: str, case: str, before: bool) -> Failure:
        when = "before this item could be graded" if before else "while this item was graded"
        return Failure(title, f"the time limit for the whole submission ({self.seconds:g} s, "
                       f"every item together) was used up {when}", case, "limit",
                       shrunk=False)


NO_BUDGET = Budget(math.inf, math.inf)  # an item graded on its own (the pre-flight, tests)


class _Stop(BaseException):
    """Ends Hypothesis's run at once (BaseException: Hypothesis does not shrink it); its
    argument is the Failure."""


class _CaseFailed(Exception):
    """A case failed: Hypothesis shrinks it; its argument is the Failure."""


MIN_SECRET_CASES = 5  # drawn cases of an item, besides its public ones, at the least


def run_item(item: Item, child: Child, limits: Limits, max_examples: int,
             course_seed: int = 0, budget: Budget = NO_BUDGET) -> tuple:
    """(failure or None, number of cases run) for one item in a started child.

    budget: the whole submission's; a case waits no longer than what is left of it."""
    deadline = time.monotonic() + limits.item_seconds
    state: dict = {"cases": 0, "last": None}

    def one_case(case) -> None:
        over_budget = budget.spent()
        if over_budget or time.monotonic() > deadline:
            last = state["last"]
            if last is not None:  # it failed on its own: that case is its feedback
                last.shrunk = False
                raise _Stop(last)
            if over_budget:
                raise _Stop(budget.failure(item.spec.title, case.describe(), before=False))
            raise _Stop(Failure(item.spec.title, f"the cases of this item took longer than the "
                                f"limit of {limits.item_seconds:g} s", case.describe(),
                                "limit"))
        state["cases"] += 1
        seconds = min(limits.case_seconds, max(budget.left(), 0.01))
        try:
            failure = item.check(child, case, seconds)
        except ChildFailure as error:
            if error.timed_out and budget.spent():
                raise _Stop(budget.failure(item.spec.title, case.describe(),
                                           before=False)) from None
            raise _Stop(Failure(item.spec.title, error.reason, case.describe(), "limit",
                                shrunk=False)) from None
        except Exception as error:  # an answer the checks could not read: the item fails
            said = protocol.clean_text(str(error))[:160]  # the grader's words, on its types
            raise _Stop(Failure(item.spec.title, "the submission's answer could not be checked "
                                f"({type(error).__name__}: {said}); it must return what the "
                                "function's docstring says (a NamedTuple where it names one)",
                                case.describe(), "error", shrunk=False)) from None
        if failure is not None:
            state["last"] = failure
            if failure.cause == "missing":
                failure.shrunk = False
                raise _Stop(failure)
            raise _CaseFailed(failure)

    # the seed is the item's: every submission meets the same cases in the same order, and
    # editing the grader's code does not change them (derandomize would seed from its source)
    test = given(item.strategy())(one_case)
    for case in reversed(item.pinned):
        test = example(case)(test)
    # the public cases count towards the item's cases: the rest are drawn from the course's
    # secret seed, never fewer than MIN_SECRET_CASES of them
    drawn = max(max_examples - len(item.pinned), min(MIN_SECRET_CASES, max_examples))
    test = settings(
        derandomize=False, database=None, max_examples=drawn, deadline=None,
        verbosity=Verbosity.quiet, phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False, print_blob=False,
    )(test)
    test = seed(zlib.crc32(item.spec.id.encode()) ^ course_seed)(test)
    try:
        test()
    except (_Stop, _CaseFailed) as stop:
        return stop.args[0], state["cases"]
    except Exception:  # Hypothesis could not replay the failure the same way (flaky code)
        if state["last"] is not None:
            state["last"].shrunk = False
            return state["last"], state["cases"]
        raise
    return None, state["cases"]


def grade_item(item: Item, entry: Entry, package: Path, rubric: Rubric, wall: Wall,
               audit_hooks: bool = True, start_seconds: float | None = None,
               budget: Budget = NO_BUDGET) -> ItemResult:
    """One item in its own child process; the child is killed before this returns.

    start_seconds: the time left for starting the child and importing the submission.
    budget: the whole submission's time; the item stops when it is spent."""
    start = time.monotonic()
    rubric, _ = rubric.seeded()  # graded alone, without a seed: a fresh secret one
    limits = rubric.limits
    failure, cases, notes = None, 0, []
    child = None
    started = None
    try:
        child = reference_child(package, limits, wall, audit_hooks)
        setup_seconds = limits.start_seconds if start_seconds is None else start_seconds
        setup = import_package(child, min(setup_seconds, max(budget.left(), 0.01)))
        started = time.monotonic() - start - child.waited  # the uid wall's turn is not ours
        if not setup.ok:
            failure = _import_failure(setup.error)
        else:
            failure, cases = run_item(item, child, limits, rubric.max_examples,
                                      int(rubric.seed or 0), budget)  # seeded above
    except ChildFailure as error:  # before the runner answered: whose fault, the grader's?
        if error.timed_out and budget.spent():
            failure = budget.failure(item.spec.title, "(before any case)", before=False)
        else:
            failure = _start_failure(error, wall)
    except WallUnavailable:
        raise
    except Exception as error:  # failure is the safe default: the item scores nothing
        failure = Failure(item.spec.title, f"the item could not be graded ({type(error).__name__})",
                          "(no case)", "error", shrunk=False)
    finally:
        if child is not None:
            notes += child.notes  # every note of every case, and what copying skipped
            child.close()
    if failure is not None:
        notes += failure.notes
    score = entry.weight if failure is None else 0.0
    seconds = time.monotonic() - start
    return ItemResult(item.spec.id, item.spec.title, entry.weight, entry.visibility, score, cases,
                      seconds, failure, list(dict.fromkeys(notes)),  # each note once
                      seconds if started is None else started)


def reference_child(package: Path, limits: Limits, wall: Wall,
                    audit_hooks: bool = True) -> Child:
    """A child of the package at ``package`` whose stand-ins the reference here answers."""
    return Child(package, limits, oracles=oracles.reference_oracles(), resolve=oracles.resolve,
                 wall=wall, audit_hooks=audit_hooks, parameters=oracles.parameters_of)


def import_package(child: Child, seconds: float):
    """The child's answer to importing its package and installing the stand-ins' stubs."""
    return child.request("setup", {"oracles": oracles.setup_list()}, seconds)


GRADER_FAULT = ("the autograder could not start its own process for this item: a fault of "
                "the grading machine, not of your submission; your instructor has to fix it")


def _start_failure(error: ChildFailure, wall: Wall) -> Failure:
    """A child that ended before answering the import: the submission's doing (os._exit at
    import, memory), unless it ended before its runner said it was ready (nothing of the
    submission had run), or the grader's own files are out of the child's reach (modes the
    grader checks itself, nothing the child said)."""
    from parity.grading.preflight import runner_problem  # preflight imports this module

    if error.grader_fault or runner_problem(wall):
        return Failure("import scratch", GRADER_FAULT, "(before any case)", "grader",
                       shrunk=False)
    return Failure("import scratch", f"while importing the package: {error.reason}",
                   "(before any case)", "import", shrunk=False)


def _import_failure(error: dict | None) -> Failure:
    error = error or {}
    return Failure("import scratch", f"your scratch package could not be imported: "
                   f"{error.get('type', 'Error')}: {error.get('message', '')}"
                   f"{error_site(error)}",
                   "(before any case)", "import", shrunk=False)


def grade_submission(path: str | Path, rubric: Rubric | None = None,
                     items: list[str] | None = None, wall: Wall | None = None,
                     audit_hooks: bool = True) -> GradeResult:
    """Grade a directory holding a student's ``scratch/`` on every item of the rubric.

    items: grade only these item ids (the others are left out of the result).
    wall: how children are walled in; by default the wall, and ``WallUnavailable``
    (raised before anything is graded) where none can be started. ``Wall.unsafe()`` grades
    without it. audit_hooks=False leaves the child's audit hook out, so that a test can show
    what the wall alone contains. A rubric without a seed gets a fresh secret one here.
    """
    rubric, drawn = (rubric or default_rubric()).seeded()
    wall = wall or find_wall()
    start = time.monotonic()
    budget = Budget(rubric.submission_budget, start + rubric.submission_budget)
    entries = [e for e in rubric.graded if items is None or e.id in items]

    def graded(results: list[ItemResult], error: str | None = None) -> GradeResult:
        return GradeResult(str(path), results, time.monotonic() - start, error=error,
                           wall=wall.describe(), unsafe=not wall.safe, seed=rubric.seed,
                           seed_drawn=drawn)

    try:
        package = find_submission_package(Path(path))
    except FileNotFoundError as error:
        failure = Failure("submission", str(error), "(no case)", "import", shrunk=False)
        return graded([ItemResult.failed(e, failure) for e in entries], str(error))
    results = []
    import_failure: Failure | None = None
    start_left = rubric.limits.start_seconds
    start_grace = min(2.0, start_left / 4)  # of each item's start, not charged
    for entry in entries:
        item = ITEMS_BY_ID[entry.id]
        if import_failure is not None:  # the same import, the same failure: no new child
            results.append(ItemResult.failed(entry, import_failure))
            continue
        if budget.spent():  # the submission's time is up: no new child
            results.append(ItemResult.failed(entry, budget.failure(item.spec.title, "(no case)",
                                                                   True)))
            continue
        result = grade_item(item, entry, package, rubric, wall, audit_hooks,
                            max(start_left, 0.5), budget)
        # only a start slower than an honest one is charged: a package that takes 1.6 s to
        # import lost every item past the 13th (20 s / 14 items) to a 20 s limit
        start_left -= max(0.0, result.start_seconds - start_grace)
        if result.failure is not None and result.failure.cause in ("import", "grader"):
            import_failure = result.failure
        results.append(result)
    return graded(results)
