"""Grading many submissions on one machine: one gradebook, CSV and JSON.

Every subdirectory of SUBMISSIONS_DIR is one submission, named by its directory (a student
id, say). Submissions are graded in parallel worker processes, each grading its submissions
one item at a time as ``grade_submission`` does; the gradebook lists them in name order
whatever the order they finished in.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from parity.grading.grade import GradeResult, grade_submission
from parity.grading.report import terminal_report, write_json
from parity.grading.rubric import Rubric, default_rubric
from parity.grading.sandbox import Wall, find_wall


@dataclass
class Gradebook:
    rows: list[GradeResult]
    seconds: float
    jobs: int


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


def _grade_one(args) -> GradeResult:
    path, rubric, wall, audit_hooks = args
    try:
        return grade_submission(path, rubric, wall=wall, audit_hooks=audit_hooks)
    except Exception as error:  # a fault of the grader: record it, grade the others
        return GradeResult(str(path), [], 0.0, error=f"the grader failed on this submission: "
                           f"{type(error).__name__}: {error}")


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


def grade_all(directory: str | Path, rubric: Rubric | None = None,
              jobs: int | None = None, wall: Wall | None = None,
              audit_hooks: bool = True) -> Gradebook:
    """Grade every submission; each item of each runs behind ``wall`` (the sandbox by
    default, checked before anything is graded: SandboxUnavailable where there is none)."""
    rubric = rubric or default_rubric()
    wall = wall or find_wall()
    submissions = list_submissions(directory)
    jobs = jobs or default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    jobs = min(jobs, len(submissions))
    start = time.monotonic()
    work = [(path, rubric, wall, audit_hooks) for path in submissions]
    if jobs == 1:
        rows = [_grade_one(w) for w in work]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            rows = list(pool.map(_grade_one, work))
    return Gradebook(rows, time.monotonic() - start, jobs)


def write_gradebook(book: Gradebook, rubric: Rubric, out: str | Path) -> dict[str, Path]:
    """gradebook.csv (one row per submission, one column per item), gradebook.json (every
    item's result and feedback) and reports/<name>.txt (the terminal report of each)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = [entry.id for entry in rubric.graded]
    csv_path = out / "gradebook.csv"
    partial = out / ".gradebook.csv.partial"
    with open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission", "score", "max_score", *ids, "seconds", "error"])
        for row in book.rows:
            scores = {item.id: item.score for item in row.items}
            writer.writerow([Path(row.submission).name, f"{row.score:g}", f"{row.max_score:g}",
                             *[f"{scores[i]:g}" if i in scores else "" for i in ids],
                             f"{row.seconds:.1f}", row.error or ""])
    os.replace(partial, csv_path)
    json_path = write_json({
        "sandbox": book.rows[0].sandbox if book.rows else "",
        "rubric": rubric.to_dict(), "seconds": round(book.seconds, 1), "jobs": book.jobs,
        "submissions": {Path(row.submission).name: row.to_dict() for row in book.rows},
    }, out / "gradebook.json")
    reports = out / "reports"
    reports.mkdir(exist_ok=True)
    for row in book.rows:
        (reports / f"{Path(row.submission).name}.txt").write_text(terminal_report(row) + "\n")
    return {"csv": csv_path, "json": json_path, "reports": reports}
