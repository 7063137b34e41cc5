"""PrairieLearn: an externally graded question, and the grading inside its container.

Follows PrairieLearn's "External Grading" page (https://prairielearn.readthedocs.io/en/latest/
externalGrading/, docs/externalGrading.md in PrairieLearn's repository) and the
``pl-file-upload`` element's page (https://docs.prairielearn.com/elements/pl-file-upload/):

* the question's ``info.json`` sets ``"gradingMethod": "External"`` and
  ``externalGradingOptions``: ``enabled``, ``image`` (pulled with ``docker pull``),
  ``entrypoint`` (an absolute path; a file under ``/grade`` is made executable before it
  runs), ``timeout`` (seconds, at most 600) and ``enableNetworking`` (false, the default);
* the question's ``tests/`` directory is copied to ``/grade/tests``, the student's files to
  ``/grade/student``; the entrypoint must write ``/grade/results/results.json`` (the directory
  is not made for it) of at most 1 MB;
* results.json: ``gradable``, ``score`` in [0, 1], ``message``, ``output`` and ``tests[]``,
  each with ``name``, ``description``, ``points``, ``max_points``, ``message`` and ``output``
  (what ``<pl-external-grader-results>`` renders). ``"gradable": false`` marks the submission
  "invalid, not gradable": no points awarded or lost, no attempt charged; ``format_errors``
  (a string or a list of them) says why.

One thing the page does not say, read from PrairieLearn's grader host
(apps/grader-host/src/index.ts): results.json is read only when the entrypoint exits with
status 0. The entrypoint therefore always exits 0 once results.json is written; an autograder
fault reaches the student as ``"gradable": false`` with words that say it is not their fault,
never as a failed job.

The question directory ``prairielearn-bundle DIR`` writes:

    DIR/info.json        external grading on, entrypoint /grade/tests/run.sh, no network
    DIR/question.html    what to write, and a pl-file-upload for the files students write
    DIR/README.md        for the instructor: building the image, testing the question
    DIR/image/Dockerfile the grading image (Ubuntu 24.04, Python 3.12, bubblewrap, setpriv,
                         python3-seccomp, the pinned NumPy and Hypothesis in a venv)
    DIR/tests/run.sh     the entrypoint: hides the harness, runs ``prairielearn``
    DIR/tests/rubric.json  the rubric, with a secret seed (as the Gradescope bundle draws)
    DIR/tests/scratch/, parity/   the reference and the harness (grader only)
    DIR/tests/skeleton/scratch/   the student version, onto which uploaded files are laid

Students upload the files they write by name (``rnn_cell.py``, ..., ``recurrent.py``: the
files with marked regions); ``prairielearn`` lays each onto its place in the skeleton and
grades the package that makes. A ``/grade/student/scratch/`` package is graded as it is.
Every item not ``visible`` in the rubric shows its points and no feedback (PrairieLearn shows
every test and the total to the student).
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import uuid
from pathlib import Path

from parity.grading.grade import GradeResult
from parity.grading.items import ITEMS_BY_ID
from parity.grading.report import autograder_fault, feedback
from parity.grading.rubric import Rubric

DEFAULT_IMAGE = "rnn-parity-grader:latest"  # the instructor builds, pushes and names it
DEFAULT_TIMEOUT = 120  # seconds; grading the reference takes about 5 s on 2 cores
MAX_TIMEOUT = 600  # PrairieLearn's own limit
VENV = "/opt/rnn-parity/venv"
ENTRYPOINT = "/grade/tests/run.sh"
HIDDEN_FEEDBACK = "The feedback of this item is hidden."


# -- results.json -----------------------------------------------------------------------------
def prairielearn_results(grade: GradeResult, notes: list[str] | tuple[str, ...] = ()) -> dict:
    """PrairieLearn's results.json for a graded submission."""
    if grade.error:  # no package to grade: the upload is malformed, not the code wrong
        return not_gradable(grade.error)
    tests, lines = [], []
    for item in grade.items:
        shown = item.visibility == "visible"
        if item.passed:
            message = "Passed."
        else:
            assert item.failure is not None
            message = item.failure.problem.splitlines()[0][:500] if shown else "Failed."
        tests.append({
            "name": item.title,
            "description": ITEMS_BY_ID[item.id].spec.about if shown else "A hidden item.",
            "points": float(item.score), "max_points": float(item.weight),
            "message": message,
            "output": feedback(item) if shown else HIDDEN_FEEDBACK,
        })
        lines.append(f"{'pass' if item.passed else 'FAIL'}  {item.title}  "
                     f"{item.score:g} / {item.weight:g}")
    passed = sum(item.passed for item in grade.items)
    message = (f"{passed} of {len(grade.items)} items passed: {grade.score:g} of "
               f"{grade.max_score:g} points. Each item is graded on its own cases; a failing "
               "item shows its smallest failing case.")
    if grade.unsafe:
        message = f"{grade.wall}\n{message}"
    output = "\n".join([*lines, *(f"note: {note}" for note in notes)])
    score = grade.score / grade.max_score if grade.max_score > 0 else 0.0
    return {"gradable": True, "score": min(1.0, max(0.0, score)), "message": message,
            "output": output, "tests": tests}


def not_gradable(message: str) -> dict:
    """results.json that awards and takes no points and charges no attempt; ``message``, where
    the student reads it, says why."""
    return {"gradable": False, "score": 0.0, "message": message, "output": "",
            "format_errors": [message], "tests": []}


def fault_results(why: str) -> dict:
    """results.json for a run the machine could not grade."""
    return not_gradable(autograder_fault(why))


# -- the submission ---------------------------------------------------------------------------
def upload_names(skeleton: Path) -> dict[str, str]:
    """file name -> its path in the package, for every .py file of the skeleton whose name
    is its own (``__init__.py`` is in two places: not uploadable)."""
    found: dict[str, list[str]] = {}
    for path in sorted(skeleton.rglob("*.py")):
        if "__pycache__" not in path.parts:
            found.setdefault(path.name, []).append(path.relative_to(skeleton).as_posix())
    return {name: paths[0] for name, paths in found.items() if len(paths) == 1}


def assemble(student: Path, skeleton: Path | None, out: Path) -> tuple[Path, list[str]]:
    """The directory to grade, and notes on what was done with the uploaded files.

    A ``student/scratch/`` package is graded as it is. Otherwise each uploaded file is laid
    onto its place in a copy of the skeleton package (``skeleton/scratch``) by its name; the
    uploads are read as ``copy_package`` reads a submission (regular .py files of at most
    1 MiB, no links followed)."""
    from parity.grading.session import copy_package

    student = Path(student)
    if skeleton is None or (student / "scratch").is_dir():
        return student, []
    base = Path(skeleton) / "scratch"
    if not (base / "__init__.py").is_file():
        raise FileNotFoundError(f"no skeleton package at {str(base)!r}")
    target = out / "submission" / "scratch"
    shutil.copytree(base, target, ignore=shutil.ignore_patterns("__pycache__"))
    uploaded = out / "uploaded"
    notes = [f"{p} was not read (not a plain .py file of at most 1 MiB)"
             for p in copy_package(student, uploaded) if not p.startswith("\0")]
    names = upload_names(base)
    used = []
    for path in sorted(uploaded.iterdir()):
        if not path.is_file():
            continue
        if path.name not in names:
            notes.append(f"{path.name} is not a file of the package and was not graded "
                         f"(the files: {', '.join(sorted(names))})")
            continue
        shutil.copyfile(path, target / names[path.name])
        used.append(path.name)
    if not used:
        notes.append("no file of the package was uploaded: the skeleton was graded")
    return out / "submission", notes


# -- the question directory -------------------------------------------------------------------
RUN_SH = """#!/bin/bash
# The entrypoint of this question's external grading (info.json). PrairieLearn reads
# /grade/results/results.json only when this exits with status 0, so it always exits 0
# once results.json is written; a fault of the autograder reaches the student as
# "gradable": false (no attempt lost), with words that say it is not their fault.
RESULTS=/grade/results/results.json
mkdir -p /grade/results
rm -f "$RESULTS"
fault() {{
    printf '%s\\n' {fault} > "$RESULTS"
}}
if [ ! -x {venv}/bin/python ]; then
    echo "error: {venv}/bin/python is missing: the question's image is not the one built" \\
         "from its image/Dockerfile" >&2
    fault
    exit 0
fi
{hide}
cd /grade/tests
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
{venv}/bin/python -m parity.grading prairielearn \\
    --student /grade/student --results "$RESULTS" \\
    --rubric /grade/tests/rubric.json --skeleton /grade/tests/skeleton
echo "grading exited with status $?" >&2
[ -s "$RESULTS" ] || fault
exit 0
"""

DOCKERFILE = """# The grading image of this question: build it, push it to Docker Hub, and give its
# name in info.json (externalGradingOptions.image).
#   docker build -t YOU/rnn-parity-grader image/ && docker push YOU/rnn-parity-grader
# Ubuntu 24.04: Python 3.12 (the pinned NumPy and Hypothesis need Python >= 3.11).
FROM ubuntu:24.04
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages} \\
 && rm -rf /var/lib/apt/lists/*
# the system's packages stay visible (python3-seccomp); the pins are the builder's versions,
# which draw the same cases as the instructor's own grading
RUN python3 -m venv --system-site-packages {venv} \\
 && {venv}/bin/python -m pip install --no-cache-dir {requirements}
"""

QUESTION_HTML = """<pl-question-panel>
  <p>Write the marked parts of the <code>scratch</code> package (the forward and backward
  passes of the RNN, LSTM and GRU cells, the loop over time and its backward pass, and the
  layer stack), then upload the files you wrote. Each is graded item by item against the
  reference, with the smallest failing case of each failing item.</p>
  <p>Upload: {listed}.</p>
</pl-question-panel>

<pl-file-upload file-names="{names}"></pl-file-upload>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""

README = """# {title}

A PrairieLearn question, written by `python -m parity prairielearn-bundle`.

1. Build the grading image and push it to Docker Hub:
   `docker build -t YOU/rnn-parity-grader image/ && docker push YOU/rnn-parity-grader`,
   and set `externalGradingOptions.image` in `info.json` to that name (now `{image}`).
2. Copy this directory into your course's `questions/` and sync.
3. Submit the reference's files once: it must score 100%. Before every submission the
   grader grades the reference on one item (the pre-flight); where the machine cannot grade,
   the submission is marked not gradable (no attempt lost) with a message that says so.

`tests/` holds the reference solution, the harness and the rubric with its secret seed:
PrairieLearn copies it to `/grade/tests` for grading only. Keep it out of anything students
can see. Grading runs with no network (`enableNetworking: false`) and a timeout of
{timeout} s.
"""


def _uploads(rubric: Rubric) -> tuple[dict[str, bytes], list[str]]:
    """The skeleton's files (tests/skeleton/...) and the names students upload: the files
    that hold a part to write, in the package's order."""
    from parity.grading.skeleton import write_skeleton

    with tempfile.TemporaryDirectory(prefix="skeleton-") as tmp:
        skeleton = write_skeleton(Path(tmp) / "handout", rubric=rubric)
        base = skeleton.out / "scratch"
        files = {f"tests/skeleton/scratch/{path.relative_to(base).as_posix()}":
                 path.read_bytes()
                 for path in sorted(base.rglob("*.py")) if "__pycache__" not in path.parts}
        names = upload_names(base)
    written = list(dict.fromkeys(Path(r.path).name for r in skeleton.regions))
    missing = [name for name in written if name not in names]
    if missing:
        raise ValueError(f"files with parts to write share a name with another file of the "
                         f"package, so an upload cannot say which it is: {missing}")
    return files, written


def question_files(rubric: Rubric, image: str = DEFAULT_IMAGE,
                   timeout: int = DEFAULT_TIMEOUT) -> dict[str, bytes]:
    """path in the question directory -> content."""
    from parity.grading.gradescope import PACKAGES, grader_files, requirements
    from parity.grading.preflight import hide_harness_sh

    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise ValueError(f"image must be a Docker image name without spaces, got {image!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or \
            not 1 <= timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be an int of seconds in 1..{MAX_TIMEOUT} "
                         f"(PrairieLearn's limit), got {timeout!r}")
    title = "RNN, LSTM and GRU from scratch: forward and backward passes"
    files = {f"tests/{name}": content for name, content in grader_files(rubric).items()}
    skeleton, names = _uploads(rubric)
    files.update(skeleton)
    info = {
        "uuid": str(uuid.uuid4()), "title": title, "topic": "Recurrent networks",
        "tags": ["rnn-parity"], "type": "v3", "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True, "image": image, "entrypoint": ENTRYPOINT,
            "timeout": timeout, "enableNetworking": False,
        },
    }
    files["info.json"] = (json.dumps(info, indent=2) + "\n").encode()
    files["question.html"] = QUESTION_HTML.format(
        names=", ".join(names), listed=", ".join(f"<code>{n}</code>" for n in names)).encode()
    files["README.md"] = README.format(title=title, image=image, timeout=timeout).encode()
    files["image/Dockerfile"] = DOCKERFILE.format(
        packages=PACKAGES, venv=VENV, requirements=" ".join(requirements())).encode()
    fault = json.dumps(fault_results("its grading program could not run in this "
                                     "question's image"))
    files["tests/run.sh"] = RUN_SH.format(
        venv=VENV, fault=shlex.quote(fault),
        hide=hide_harness_sh("/grade/tests", ("/grade",))).encode()
    return files


def write_question(out: str | Path, rubric: Rubric | None = None, image: str = DEFAULT_IMAGE,
                   timeout: int = DEFAULT_TIMEOUT, force: bool = False) -> Path:
    """Write the question directory (new, or empty unless force); the rubric gets a fresh
    secret seed where it sets none."""
    from parity.grading.gradescope import with_secret_seed

    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not force)):
        raise FileExistsError(f"{str(out)!r} exists and is not an empty directory: choose a "
                              "new one (or --force to write into it)")
    files = question_files(with_secret_seed(rubric), image, timeout)
    for name, content in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o755 if name == "tests/run.sh" else 0o644)
    return out
