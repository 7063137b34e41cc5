"""The grading commands. Each has a ``main(argv)``; ``main`` dispatches on the first word.

    python -m parity skeleton OUT [--source DIR] [--rubric FILE] [--force]
    python -m parity grade SUBMISSION [--rubric FILE] [--seed N] [--items a,b]
                                      [--results FILE] [--json FILE] [--verbose]
                                      [--unsafe-no-wall]
    python -m parity grade-all SUBMISSIONS_DIR [--out DIR] [--jobs N] [--rubric FILE]
                                               [--seed N] [--unsafe-no-wall]
    python -m parity gradescope-bundle OUT.zip [--rubric FILE]
    python -m parity prairielearn-bundle DIR [--rubric FILE] [--image NAME] [--timeout S]
    python -m parity wall-check [--rubric FILE]

(``python -m parity.grading ...`` runs the same commands without loading torch.) Exit status:
0 done (for ``grade``: full marks), 1 done with points lost, 2 a usage error or a bad input,
3 no wall can be started here (the message says what to install or enable; nothing was
graded), 4 the pre-flight failed: the reference itself did not score full marks on one item
behind the wall (``preflight``; the message says what is wrong with the machine; nothing was
graded).
``gradescope`` is what the bundle's run_autograder runs, ``prairielearn`` what the
PrairieLearn question's entrypoint runs: each always writes its results.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

USAGE_ERROR = 2
NO_WALL = 3
PREFLIGHT_FAILED = 4


def _unsafe_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unsafe-no-wall", action="store_true",
                        help="grade even where the wall cannot start: the submission's code "
                             "then runs as a plain process (never for untrusted code); the "
                             "report says so on its first line")
    parser.add_argument("--unsafe-no-sandbox", action="store_true", dest="unsafe_no_wall",
                        help=argparse.SUPPRESS)  # its former name


def _wall(args):
    """The wall to grade behind, or None after saying why there is none."""
    from parity.grading.session import Wall, WallUnavailable, find_wall
    from parity.grading.walls import check_hidden

    if args.unsafe_no_wall:
        print("warning: --unsafe-no-wall: submissions run without the wall",
              file=sys.stderr)
        return Wall.unsafe()
    try:
        wall = find_wall()
        check_hidden(wall, [getattr(args, "rubric", None), getattr(args, "submissions", None)],
                     getattr(args, "seed", None) is not None)
        return wall
    except WallUnavailable as error:
        print(f"error: cannot grade safely here: {error}", file=sys.stderr)
        return None


def _preflight(rubric, wall) -> bool:
    """Grade the reference on one item behind ``wall``; False after saying what is wrong."""
    from parity.grading.preflight import preflight

    result = preflight(rubric, wall)
    if not result.ok:
        print(f"error: {result.message()}", file=sys.stderr)
    return result.ok


def _rubric(path, seed=None):
    from parity.grading.rubric import default_rubric, load_rubric

    rubric = load_rubric(path) if path else default_rubric()
    return rubric if seed is None else rubric.seeded(seed)[0]


def _error(error) -> int:
    print(f"error: {error}", file=sys.stderr)
    return USAGE_ERROR


# what gradescope's results.json says of each exit status of _ready
NOT_READY = {USAGE_ERROR: "its rubric could not be read",
             NO_WALL: "its wall could not start on this machine",
             PREFLIGHT_FAILED: "its pre-flight check failed: it could not grade the reference "
                               "solution"}


def _ready(args):
    """(rubric, wall) to grade with: the rubric read (with --seed where the command has it),
    the wall found, the pre-flight passed; or the exit status, after saying why not."""
    try:
        rubric = _rubric(args.rubric, getattr(args, "seed", None))
    except ValueError as error:
        return _error(error)
    wall = _wall(args)
    if wall is None:
        return NO_WALL
    if not _preflight(rubric, wall):  # once: a machine that cannot grade would fail everyone
        return PREFLIGHT_FAILED
    return rubric, wall


def _seed_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="the course seed, instead of the rubric's: the one a report "
                             "names meets the same cases again (default: the rubric's, or a "
                             "fresh secret one drawn for this run)")


def _rubric_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rubric", default=None, metavar="FILE",
                        help="a TOML or JSON rubric: weights, visibility, limits "
                             "(default: every item at its default weight, visible)")


def skeleton_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity skeleton",
        description="Write the student version of scratch/: the marked solution regions "
                    "replaced by TODOs and raise NotImplementedError, and a README of what "
                    "to write and how it is graded.")
    p.add_argument("out", type=Path, help="a new (or empty) directory")
    p.add_argument("--source", type=Path, default=None,
                   help="the marked reference package (default: this project's scratch/)")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT")
    _rubric_arg(p)
    args = p.parse_args(argv)
    from parity.grading.markers import MarkerError
    from parity.grading.skeleton import write_skeleton

    try:
        skeleton = write_skeleton(args.out, args.source, _rubric(args.rubric), args.force)
    except (OSError, ValueError, MarkerError) as error:
        return _error(error)
    print(f"wrote {len(skeleton.files)} files into {args.out}: {len(skeleton.regions)} parts "
          f"for students to write, in "
          f"{len({r.function for r in skeleton.regions})} functions")
    return 0


def grade_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity grade",
        description="Grade a directory holding a student's scratch/ against the reference, "
                    "item by item, each in its own walled process.")
    p.add_argument("submission", type=Path)
    _rubric_arg(p)
    p.add_argument("--items", default=None, help="comma-separated item ids (default: all)")
    p.add_argument("--results", type=Path, default=None, metavar="FILE",
                   help="also write Gradescope's results.json here")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the full result as JSON here")
    p.add_argument("--verbose", action="store_true", help="feedback for passing items too")
    _seed_arg(p)
    _unsafe_arg(p)
    args = p.parse_args(argv)
    from parity.grading.grade import grade_submission
    from parity.grading.items import ITEMS_BY_ID
    from parity.grading.report import terminal_report, write_gradescope_results, write_json

    items = None
    if args.items:
        items = [i.strip() for i in args.items.split(",") if i.strip()]
        unknown = [i for i in items if i not in ITEMS_BY_ID]
        if unknown:
            return _error(f"unknown items {unknown}; items: {', '.join(ITEMS_BY_ID)}")
    ready = _ready(args)
    if isinstance(ready, int):
        return ready
    rubric, wall = ready
    grade = grade_submission(args.submission, rubric, items, wall=wall)
    if grade.error:
        print(f"error: {grade.error}", file=sys.stderr)
    print(terminal_report(grade, args.verbose))
    if args.results:
        write_gradescope_results(grade, args.results)
    if args.json:
        write_json(grade.to_dict(), args.json)
    if grade.error:
        return USAGE_ERROR
    if grade.grader_fault:
        print("error: an item's child could not start for the grader's own reasons (not the "
              "submission's): run `python -m parity wall-check` and grade again",
              file=sys.stderr)
        return PREFLIGHT_FAILED
    return 0 if grade.score == grade.max_score else 1


def grade_all_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity grade-all",
        description="Grade every subdirectory of SUBMISSIONS_DIR (one submission each) in "
                    "parallel, and write one gradebook (CSV and JSON) and a report each.")
    p.add_argument("submissions", type=Path)
    p.add_argument("--out", type=Path, default=Path("gradebook"),
                   help="where the gradebook goes (default: ./gradebook)")
    p.add_argument("--jobs", type=int, default=None,
                   help="submissions graded at once (default: the number of cores)")
    _rubric_arg(p)
    _seed_arg(p)
    _unsafe_arg(p)
    args = p.parse_args(argv)
    from parity.grading.batch import grade_all, write_gradebook

    ready = _ready(args)
    if isinstance(ready, int):
        return ready
    rubric, wall = ready
    try:
        book = grade_all(args.submissions, rubric, args.jobs, wall=wall)
    except (OSError, ValueError) as error:
        return _error(error)
    paths = write_gradebook(book, rubric, args.out)
    if not wall.safe:
        print(wall.describe())
    width = max(len(Path(row.submission).name) for row in book.rows)
    for row in book.rows:
        flag = f"  ({row.error})" if row.error else ""
        if row.grader_fault:
            flag += "  (a fault of the grading machine: regrade it)"
        print(f"{Path(row.submission).name:<{width}}  {row.score:>6g} / {row.max_score:g}{flag}")
    print(f"{len(book.rows)} submissions in {book.seconds:.1f} s with {book.jobs} jobs; "
          f"gradebook: {paths['csv']}, {paths['json']}")
    if book.seed_drawn:
        print(f"seed {book.seed}: drawn for this run (the rubric sets none); --seed "
              f"{book.seed} meets the same cases")
    return 0


def bundle_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity gradescope-bundle",
        description="Build the Gradescope autograder zip: setup.sh, run_autograder, this "
                    "harness, the reference and the rubric.")
    p.add_argument("out", type=Path, help="the zip to write, e.g. autograder.zip")
    _rubric_arg(p)
    args = p.parse_args(argv)
    from parity.grading.gradescope import write_bundle

    try:
        path = write_bundle(args.out, _rubric(args.rubric))
    except (OSError, ValueError) as error:
        return _error(error)
    print(f"wrote {path}: upload it as the assignment's autograder (Ubuntu 24.04 base image)")
    return 0


def gradescope_main(argv: list[str]) -> int:
    """Inside the autograder: check the wall, run the pre-flight, grade, and always leave
    a results.json. Where the machine is at fault nothing is graded, results.json says the
    student is not at fault, and the exit status is not 0."""
    p = argparse.ArgumentParser(prog="python -m parity.grading gradescope")
    p.add_argument("--submission", type=Path, required=True)
    p.add_argument("--results", type=Path, required=True)
    _rubric_arg(p)
    _unsafe_arg(p)
    args = p.parse_args(argv)
    from parity.grading.report import (
        gradescope_fault_results,
        terminal_report,
        write_gradescope_results,
        write_json,
    )

    def failed(why: str) -> None:
        write_json(gradescope_fault_results(why), args.results)

    ready = _ready(args)
    if isinstance(ready, int):  # say so to the student and the instructor; grade nothing
        failed(NOT_READY[ready])
        return ready
    rubric, wall = ready
    try:
        from parity.grading.grade import grade_submission

        grade = grade_submission(args.submission, rubric, wall=wall)
    except Exception as error:  # the grader itself failed: say so, score nothing
        failed(f"it failed before grading your submission ({type(error).__name__})")
        raise
    print(terminal_report(grade, verbose=True))
    print(f"isolation: {wall.describe()}")
    if grade.grader_fault:  # an item's child could not start for the grader's own reasons
        failed("it could not start its own process for an item")
        return PREFLIGHT_FAILED
    write_gradescope_results(grade, args.results)
    return 0


def prairielearn_main(argv: list[str]) -> int:
    """Inside a PrairieLearn grading container: see ``prairielearn.main``."""
    from parity.grading.prairielearn import main

    return main(argv)


def prairielearn_bundle_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m parity prairielearn-bundle",
        description="Write a PrairieLearn question directory: info.json (external grading), "
                    "question.html (a file upload), tests/ (this harness, the reference, the "
                    "rubric with a secret seed, the skeleton and the entrypoint) and image/ "
                    "(the Dockerfile of the grading image).")
    p.add_argument("out", type=Path, help="the question directory to write (new or empty)")
    _rubric_arg(p)
    p.add_argument("--image", default=None,
                   help="the grading image's name on Docker Hub, as info.json gives it "
                        "(build and push it from OUT/image/Dockerfile)")
    p.add_argument("--timeout", type=int, default=None,
                   help="PrairieLearn's limit for one grading job, in seconds (1-600)")
    p.add_argument("--force", action="store_true", help="write into a non-empty OUT")
    args = p.parse_args(argv)
    from parity.grading.markers import MarkerError
    from parity.grading.prairielearn import DEFAULT_IMAGE, DEFAULT_TIMEOUT, write_question

    try:
        path = write_question(args.out, _rubric(args.rubric), args.image or DEFAULT_IMAGE,
                              args.timeout or DEFAULT_TIMEOUT, args.force)
    except (OSError, ValueError, MarkerError) as error:
        return _error(error)
    print(f"wrote the question {path}: copy it into your course's questions/, build and push "
          f"the grading image ({path / 'image' / 'Dockerfile'}) under the name info.json "
          "gives, and sync")
    return 0


def wall_main(argv: list[str]) -> int:
    """Check that this machine can grade: start the wall grading uses and grade the
    reference on one item behind it (the pre-flight); it must score full marks."""
    p = argparse.ArgumentParser(prog="python -m parity wall-check",
                                description=wall_main.__doc__)
    _rubric_arg(p)
    args = p.parse_args(argv)
    from parity.grading.preflight import preflight
    from parity.grading.session import WallUnavailable, find_wall

    try:
        rubric = _rubric(args.rubric)
    except ValueError as error:
        return _error(error)
    try:
        wall = find_wall()
    except WallUnavailable as error:
        print(f"wall: unavailable: {error}", file=sys.stderr)
        return NO_WALL
    print(f"wall: starts: {wall.describe()}")
    result = preflight(rubric, wall)
    if not result.ok:
        print(result.message(), file=sys.stderr)
        return PREFLIGHT_FAILED
    print(result.message())
    return 0


COMMANDS = {"skeleton": skeleton_main, "grade": grade_main, "grade-all": grade_all_main,
            "gradescope-bundle": bundle_main, "gradescope": gradescope_main,
            "prairielearn-bundle": prairielearn_bundle_main,
            "prairielearn": prairielearn_main, "wall-check": wall_main,
            "sandbox-check": wall_main}  # wall-check's former name


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``COMMAND ARGS...`` to the command's main."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m parity {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return USAGE_ERROR
    return COMMANDS[argv[0]](argv[1:])
