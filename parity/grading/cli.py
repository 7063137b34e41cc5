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
import tempfile
from pathlib import Path

USAGE_ERROR = 2
NO_WALL = 3
PREFLIGHT_FAILED = 4
PLATFORMS = ("gradescope", "prairielearn")  # run inside the platform, as parity.grading

# the options several commands take: name -> (flags, add_argument's settings)
SHARED = {
    "rubric": (["--rubric"], dict(
        metavar="FILE", help="a TOML or JSON rubric: weights, visibility, limits (default: "
                             "every item at its default weight, visible)")),
    "seed": (["--seed"], dict(
        type=int, metavar="N", help="the course seed, instead of the rubric's: the one a "
                                    "report names meets the same cases again (default: the "
                                    "rubric's, or a fresh secret one drawn for this run)")),
    "unsafe": (["--unsafe-no-wall"], dict(
        action="store_true", help="grade even where the wall cannot start: the submission's "
                                  "code then runs as a plain process (never for untrusted "
                                  "code); the report says so on its first line")),
    "force": (["--force"], dict(action="store_true", help="write into a non-empty OUT")),
}


def _parser(command: str, description: str | None, *shared: str) -> argparse.ArgumentParser:
    """The command's parser, with the ``SHARED`` options it takes."""
    module = "parity.grading" if command in PLATFORMS else "parity"
    p = argparse.ArgumentParser(prog=f"python -m {module} {command}", description=description)
    for name in shared:
        flags, settings = SHARED[name]
        p.add_argument(*flags, **settings)
    if "unsafe" in shared:  # its former name
        p.add_argument("--unsafe-no-sandbox", action="store_true", dest="unsafe_no_wall",
                       help=argparse.SUPPRESS)
    return p


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


def _rubric(path, seed=None):
    from parity.grading.rubric import default_rubric, load_rubric

    rubric = load_rubric(path) if path else default_rubric()
    return rubric if seed is None else rubric.seeded(seed)[0]


def _error(error) -> int:
    print(f"error: {error}", file=sys.stderr)
    return USAGE_ERROR


# what a platform's results.json says of each exit status of _ready
NOT_READY = {USAGE_ERROR: "its rubric could not be read",
             NO_WALL: "its wall could not start on this machine",
             PREFLIGHT_FAILED: "its pre-flight check failed: it could not grade the reference "
                               "solution"}


def _ready(args):
    """(rubric, wall) to grade with: the rubric read (with --seed where the command has it),
    the wall found, the pre-flight passed; or the exit status, after saying why not."""
    from parity.grading.preflight import preflight

    try:
        rubric = _rubric(args.rubric, getattr(args, "seed", None))
    except ValueError as error:
        return _error(error)
    wall = _wall(args)
    if wall is None:
        return NO_WALL
    result = preflight(rubric, wall)  # once: a machine that cannot grade would fail everyone
    if not result.ok:
        print(f"error: {result.message()}", file=sys.stderr)
        return PREFLIGHT_FAILED
    return rubric, wall


def skeleton_main(argv: list[str]) -> int:
    p = _parser("skeleton", "Write the student version of scratch/: the marked solution "
                "regions replaced by TODOs and raise NotImplementedError, and a README of "
                "what to write and how it is graded.", "rubric", "force")
    p.add_argument("out", type=Path, help="a new (or empty) directory")
    p.add_argument("--source", type=Path, default=None,
                   help="the marked reference package (default: this project's scratch/)")
    args = p.parse_args(argv)
    from parity.grading.skeleton import write_skeleton

    try:  # a MarkerError is a ValueError
        skeleton = write_skeleton(args.out, args.source, _rubric(args.rubric), args.force)
    except (OSError, ValueError) as error:
        return _error(error)
    print(f"wrote {len(skeleton.files)} files into {args.out}: {len(skeleton.regions)} parts "
          f"for students to write, in "
          f"{len({r.function for r in skeleton.regions})} functions")
    return 0


def grade_main(argv: list[str]) -> int:
    p = _parser("grade", "Grade a directory holding a student's scratch/ against the "
                "reference, item by item, each in its own walled process.",
                "rubric", "seed", "unsafe")
    p.add_argument("submission", type=Path)
    p.add_argument("--items", default=None, help="comma-separated item ids (default: all)")
    p.add_argument("--results", type=Path, default=None, metavar="FILE",
                   help="also write Gradescope's results.json here")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the full result as JSON here")
    p.add_argument("--verbose", action="store_true", help="feedback for passing items too")
    args = p.parse_args(argv)
    from parity.grading.grade import grade_submission
    from parity.grading.items import ITEMS_BY_ID
    from parity.grading.report import gradescope_results, terminal_report, write_json

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
        write_json(gradescope_results(grade), args.results)
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
    p = _parser("grade-all", "Grade every subdirectory of SUBMISSIONS_DIR (one submission "
                "each) in parallel, and write one gradebook (CSV and JSON) and a report each.",
                "rubric", "seed", "unsafe")
    p.add_argument("submissions", type=Path)
    p.add_argument("--out", type=Path, default=Path("gradebook"),
                   help="where the gradebook goes (default: ./gradebook)")
    p.add_argument("--jobs", type=int, default=None,
                   help="submissions graded at once (default: the number of cores)")
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
    p = _parser("gradescope-bundle", "Build the Gradescope autograder zip: setup.sh, "
                "run_autograder, this harness, the reference and the rubric.", "rubric")
    p.add_argument("out", type=Path, help="the zip to write, e.g. autograder.zip")
    args = p.parse_args(argv)
    from parity.grading.gradescope import write_bundle

    try:
        path = write_bundle(args.out, _rubric(args.rubric))
    except (OSError, ValueError) as error:
        return _error(error)
    print(f"wrote {path}: upload it as the assignment's autograder (Ubuntu 24.04 base image)")
    return 0


def _platform(args, fault_results, crashed: str, grade) -> int:
    """Grading inside a platform: check the wall, run the pre-flight, ``grade(rubric, wall)``
    -> (the GradeResult, the platform's results.json), and always leave a results.json at
    ``args.results``. Where the machine is at fault nothing is graded: ``fault_results(why)``
    tells the student it is not their fault, and the exit status is not 0."""
    from parity.grading.report import terminal_report, write_json

    def failed(why: str, code: int) -> int:
        write_json(fault_results(why), args.results)
        return code

    try:
        ready = _ready(args)
        if isinstance(ready, int):  # say so to the student and the instructor; grade nothing
            return failed(NOT_READY[ready], ready)
        rubric, wall = ready
        grade, results = grade(rubric, wall)
    except Exception as error:  # the grader itself failed: say so, score nothing
        failed(f"{crashed} ({type(error).__name__})", 1)
        raise
    print(terminal_report(grade, verbose=True))
    print(f"isolation: {wall.describe()}")
    if grade.grader_fault:  # an item's child could not start for the grader's own reasons
        return failed("it could not start its own process for an item", PREFLIGHT_FAILED)
    write_json(results, args.results)
    return 0


def gradescope_main(argv: list[str]) -> int:
    """Inside the autograder: grade /autograder/submission into Gradescope's results.json
    (``_platform``)."""
    p = _parser("gradescope", None, "rubric", "unsafe")
    p.add_argument("--submission", type=Path, required=True)
    p.add_argument("--results", type=Path, required=True)
    args = p.parse_args(argv)
    from parity.grading import grade
    from parity.grading.report import gradescope_fault_results, gradescope_results

    def graded(rubric, wall):
        result = grade.grade_submission(args.submission, rubric, wall=wall)
        return result, gradescope_results(result)

    return _platform(args, gradescope_fault_results,
                     "it failed before grading your submission", graded)


def prairielearn_main(argv: list[str]) -> int:
    """Inside a PrairieLearn grading container: grade /grade/student (uploaded files laid onto
    the skeleton, ``prairielearn.assemble``) into /grade/results/results.json in PrairieLearn's
    format (``_platform``). ``run.sh`` exits 0 whatever this returns."""
    p = _parser("prairielearn", "Grade a PrairieLearn submission and write its results.json.",
                "rubric", "unsafe")
    p.add_argument("--student", type=Path, default=Path("/grade/student"),
                   help="the submitted files (default: /grade/student)")
    p.add_argument("--results", type=Path, default=Path("/grade/results/results.json"),
                   help="where results.json goes (default: /grade/results/results.json)")
    p.add_argument("--skeleton", type=Path, default=None,
                   help="a directory holding the skeleton's scratch/, onto which uploaded "
                        "files are laid by name (default: grade --student as it is)")
    args = p.parse_args(argv)
    from parity.grading import grade
    from parity.grading.prairielearn import assemble, fault_results, prairielearn_results

    def graded(rubric, wall):
        with tempfile.TemporaryDirectory(prefix="grading-upload-") as tmp:
            submission, notes = assemble(args.student, args.skeleton, Path(tmp))
            result = grade.grade_submission(submission, rubric, wall=wall)
        result.notes += notes
        return result, prairielearn_results(result, notes)

    return _platform(args, fault_results, "it failed while grading", graded)


def prairielearn_bundle_main(argv: list[str]) -> int:
    p = _parser("prairielearn-bundle", "Write a PrairieLearn question directory: info.json "
                "(external grading), question.html (a file upload), tests/ (this harness, the "
                "reference, the rubric with a secret seed, the skeleton and the entrypoint) "
                "and image/ (the Dockerfile of the grading image).", "rubric", "force")
    p.add_argument("out", type=Path, help="the question directory to write (new or empty)")
    p.add_argument("--image", default=None,
                   help="the grading image's name on Docker Hub, as info.json gives it "
                        "(build and push it from OUT/image/Dockerfile)")
    p.add_argument("--timeout", type=int, default=None,
                   help="PrairieLearn's limit for one grading job, in seconds (1-600)")
    args = p.parse_args(argv)
    from parity.grading.prairielearn import DEFAULT_IMAGE, DEFAULT_TIMEOUT, write_question

    try:
        path = write_question(args.out, _rubric(args.rubric), args.image or DEFAULT_IMAGE,
                              args.timeout or DEFAULT_TIMEOUT, args.force)
    except (OSError, ValueError) as error:
        return _error(error)
    print(f"wrote the question {path}: copy it into your course's questions/, build and push "
          f"the grading image ({path / 'image' / 'Dockerfile'}) under the name info.json "
          "gives, and sync")
    return 0


def wall_main(argv: list[str]) -> int:
    """Check that this machine can grade: start the wall grading uses and grade the
    reference on one item behind it (the pre-flight); it must score full marks."""
    args = _parser("wall-check", wall_main.__doc__, "rubric").parse_args(argv)
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
    print(result.message(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else PREFLIGHT_FAILED


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
