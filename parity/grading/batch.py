"""Grading many submissions on one machine: one gradebook, CSV and JSON.

Every subdirectory of SUBMISSIONS_DIR is one submission, named by its directory (a student
id, say). Submissions are graded in parallel worker processes, each grading one submission at
a time as ``grade_submission`` does; the gradebook lists them in name order whatever the order
they finished in. Every submission of a run meets the same cases: the rubric's seed, or one
drawn for the run where it sets none (recorded in the gradebook).

A worker can die under a submission (the kernel's out-of-memory killer picks the largest
process, and that may be the worker rather than the child that filled the memory). The grader
knows which submission each worker is grading, so only that one is touched: it is graded once
more, in a fresh worker, and if that worker dies too, every item of it fails with a grader
error and the gradebook says so, for the instructor to regrade it. The other submissions and
the gradebook never depend on a worker staying alive.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from parity.grading.grade import GradeResult, ItemResult, grade_submission
from parity.grading.items import ITEMS_BY_ID, Failure
from parity.grading.report import terminal_report, write_json, write_private
from parity.grading.rubric import Rubric, default_rubric
from parity.grading.session import Wall, find_wall

ATTEMPTS = 2  # a submission whose worker died is graded once more, in a fresh worker
GRADER_ERROR = "grader error"  # the start of every reason that is the grader's fault

Grade = Callable[..., GradeResult]  # grade_submission(path, rubric, wall=, audit_hooks=)


@dataclass
class Gradebook:
    rows: list[GradeResult]
    seconds: float
    jobs: int
    seed: int | None = None  # every submission's cases were drawn with it
    seed_drawn: bool = False  # drawn for this run: the rubric set none


def list_submissions(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"submissions directory {str(directory)!r} does not exist")
    # a link is not a submission: it could point at any tree of the machine (the reference's)
    found = sorted(p for p in directory.iterdir()
                   if p.is_dir() and not p.is_symlink() and not p.name.startswith((".", "_")))
    if not found:
        raise FileNotFoundError(f"no submissions in {str(directory)!r}: expected one "
                                "subdirectory per submission")
    return found


def _work(connection: Connection, grade: Grade, rubric: Rubric, wall: Wall,
          audit_hooks: bool) -> None:
    """A worker process: grade each submission it is sent, one at a time, until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader decides when workers end
    while (path := connection.recv()) is not None:
        try:
            row = grade(path, rubric, wall=wall, audit_hooks=audit_hooks)
        except Exception as error:  # a fault of the grader: record it, grade the others
            row = GradeResult(str(path), [], 0.0, error=f"{GRADER_ERROR}: the grader failed "
                              f"on this submission: {type(error).__name__}: {error}",
                              seed=rubric.seed)
        connection.send(row)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    index: int | None = None  # the submission it is grading
    started: float = 0.0
    graded: int = 0  # submissions it has finished

    def stop(self) -> None:
        """End it at once (a worker holds no state worth waiting for)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.connection.close()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ \
            else str(-code)
        why = " (the kernel's out-of-memory killer sends it)" if -code == signal.SIGKILL else ""
        return f"killed by {name}{why}"
    return f"exited with status {code}"


def _grader_error(path: Path, rubric: Rubric, deaths: list[str], seconds: float) -> GradeResult:
    """Every item failed, and why: the grader's fault, never the submission's."""
    reason = (f"{GRADER_ERROR}: the process grading this submission died "
              f"{len(deaths)} times ({'; '.join(deaths)}), so it was not graded. This is a "
              "fault of the grading machine, not of the submission; it will be regraded.")
    items = [ItemResult.failed(e, Failure(ITEMS_BY_ID[e.id].spec.title, reason, "(not graded)",
                                          "error", shrunk=False)) for e in rubric.graded]
    return GradeResult(str(path), items, seconds, error=reason, seed=rubric.seed)


class _Pool:
    """Workers that each grade one submission at a time; a dead one is replaced."""

    def __init__(self, jobs: int, work: tuple) -> None:
        self.jobs = jobs
        self.work = work  # _work's arguments after its connection
        self.workers: list[_Worker] = []
        self.context = multiprocessing.get_context("spawn")

    def start(self) -> _Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_work, args=(theirs, *self.work),
                                       name="grade-all worker")
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        self.workers.append(worker)
        return worker

    def idle(self, fresh: bool) -> _Worker | None:
        """A worker free to grade (one that has graded nothing yet if ``fresh``), started
        where there is room; None where every one is busy."""
        for worker in self.workers:
            if worker.index is None and (worker.graded == 0 or not fresh):
                return worker
        if len(self.workers) >= self.jobs and fresh:
            spent = next((w for w in self.workers if w.index is None), None)
            if spent is not None:  # make room for a fresh one
                self.retire(spent)
        if len(self.workers) < self.jobs:
            return self.start()
        return None

    def retire(self, worker: _Worker) -> None:
        self.workers.remove(worker)
        worker.stop()

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.connection.send(None)
            except OSError:
                pass
        for worker in self.workers:
            worker.process.join(timeout=5)
            worker.stop()
        self.workers = []


def _grade_in_workers(paths: list[Path], rubric: Rubric, wall: Wall, audit_hooks: bool,
                      jobs: int, grade: Grade) -> list[GradeResult]:
    rows: list[GradeResult | None] = [None] * len(paths)
    deaths: list[list[str]] = [[] for _ in paths]
    spent = [0.0] * len(paths)
    queue = deque(range(len(paths)))
    pool = _Pool(jobs, (grade, rubric, wall, audit_hooks))
    try:
        while queue or any(w.index is not None for w in pool.workers):
            while queue:
                index = queue[0]
                worker = pool.idle(fresh=bool(deaths[index]))
                if worker is None:
                    break
                queue.popleft()
                worker.index, worker.started = index, time.monotonic()
                try:
                    worker.connection.send(paths[index])
                except OSError:  # it died before its first submission: its sentinel says so
                    pass
            busy = [w for w in pool.workers if w.index is not None]
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.connection not in ready and worker.process.sentinel not in ready:
                    continue
                held = worker.index
                assert held is not None
                row = None
                try:
                    if worker.connection.poll():
                        row = worker.connection.recv()
                except Exception:  # EOF or half a message: it died while answering
                    row = None
                spent[held] += time.monotonic() - worker.started
                if isinstance(row, GradeResult):
                    if deaths[held]:
                        row.notes.append(f"graded a second time: the first process grading "
                                         f"it was {deaths[held][0]}")
                    rows[held] = row
                    worker.index = None
                    worker.graded += 1
                    continue
                # no answer: the worker is dead (or broke its pipe); only its submission is
                # charged, and not to the student
                pool.retire(worker)
                deaths[held].append(_death(worker.process.exitcode))
                if len(deaths[held]) < ATTEMPTS:
                    queue.appendleft(held)
                else:
                    rows[held] = _grader_error(paths[held], rubric, deaths[held], spent[held])
    finally:
        pool.close()
    assert all(row is not None for row in rows)
    return [row for row in rows if row is not None]


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def grade_all(directory: str | Path, rubric: Rubric | None = None,
              jobs: int | None = None, wall: Wall | None = None,
              audit_hooks: bool = True, grade: Grade = grade_submission) -> Gradebook:
    """Grade every submission; each item of each runs behind ``wall`` (the wall by
    default, checked before anything is graded: WallUnavailable where there is none).

    Each submission is graded by ``grade`` (``grade_submission``'s signature; a module-level
    function, since the workers are spawned) in a worker process of its own, ``jobs`` at
    once; a rubric without a seed gets one fresh secret seed for the whole run."""
    rubric, drawn = (rubric or default_rubric()).seeded()
    wall = wall or find_wall()
    submissions = list_submissions(directory)
    jobs = jobs or default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    jobs = min(jobs, len(submissions))
    start = time.monotonic()
    rows = _grade_in_workers(submissions, rubric, wall, audit_hooks, jobs, grade)
    for row in rows:
        row.seed_drawn = drawn
    return Gradebook(rows, time.monotonic() - start, jobs, rubric.seed, drawn)


def write_gradebook(book: Gradebook, rubric: Rubric, out: str | Path) -> dict[str, Path]:
    """gradebook.csv (one row per submission, one column per item), gradebook.json (every
    item's result and feedback) and reports/<name>.txt (the terminal report of each)."""
    out = Path(out)
    ids = [entry.id for entry in rubric.graded]
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["submission", "score", "max_score", *ids, "seconds", "error"])
    for row in book.rows:
        scores = {item.id: item.score for item in row.items}
        writer.writerow([Path(row.submission).name, f"{row.score:g}", f"{row.max_score:g}",
                         *[f"{scores[i]:g}" if i in scores else "" for i in ids],
                         f"{row.seconds:.1f}", row.error or ""])
    csv_path = write_private(table.getvalue(), out / "gradebook.csv")
    json_path = write_json({
        "wall": next((row.wall for row in book.rows if row.wall), ""),
        "seed": book.seed, "seed_drawn": book.seed_drawn,
        "rubric": rubric.to_dict() | {"seed": book.seed},
        "seconds": round(book.seconds, 1), "jobs": book.jobs,
        "submissions": {Path(row.submission).name: row.to_dict() for row in book.rows},
    }, out / "gradebook.json")
    reports = out / "reports"
    for row in book.rows:  # a student may be handed their report: no course seed in it
        write_private(terminal_report(row, seed=False) + "\n",
                      reports / f"{Path(row.submission).name}.txt")
    return {"csv": csv_path, "json": json_path, "reports": reports}
