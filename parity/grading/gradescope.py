"""The Gradescope autograder bundle: this harness, the reference, the rubric, two scripts.

Gradescope unpacks the zip into /autograder/source, runs ``setup.sh`` once (as root) when it
builds the image, and ``run_autograder`` for every submission, whose files it puts in
/autograder/submission; the grade goes to /autograder/results/results.json (Gradescope's
autograder specification: https://gradescope-autograders.readthedocs.io/en/latest/specs/).

``setup.sh`` installs, after refreshing the package lists, Python's venv module, bubblewrap
(the namespace wall), util-linux (``setpriv``) and ``python3-seccomp`` (libseccomp's Python
bindings, which the wall that runs each child as a uid of its own uses for its system-call
filter). It makes a virtual environment that also sees the system's packages (so that
``seccomp`` imports) with the exact NumPy and Hypothesis versions of the machine that built
the bundle, makes the source readable by root only but for the runner each child must read,
and runs the pre-flight (``wall-check``: the reference graded on one item behind the wall
grading will use). If that does not score full marks, the image build FAILS with what to
change: Gradescope shows a failed build to the instructor at upload time, never to students.

The Python version: the pins are the versions that drew the instructor's cases (one Hypothesis
version draws one set of cases), so they are kept exactly rather than loosened to whatever the
base image's Python can install. NumPy 2.4 and this Hypothesis need Python 3.11 or newer, and
Ubuntu 22.04's Python is 3.10 (no wheel, and pip would try to build NumPy from source), so
``setup.sh`` checks ``python3`` against what the pins require before installing anything
from PyPI and fails with the base image to choose (Ubuntu 24.04) instead of a long build error.

``run_autograder`` runs ``python -m parity.grading gradescope``, which runs the pre-flight
again before every submission (it costs one item). If the machine cannot grade (no wall,
the pre-flight fails, the grader raises, or an item's child could not start for the grader's
own reasons), nothing is graded: results.json says the autograder is misconfigured and that
the student is not at fault (score 0, which Gradescope needs), and the run exits non-zero.
torch is not needed to grade.
"""

from __future__ import annotations

import io
import re
import secrets
import zipfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from parity.grading.rubric import Rubric, default_rubric

PROJECT = Path(__file__).resolve().parents[2]
PACKAGES = "python3 python3-venv bubblewrap util-linux python3-seccomp"
SOURCE = "/autograder/source"

SETUP_SH = """#!/usr/bin/env bash
# Runs once, as root, when Gradescope builds the autograder image. Any failure fails the build.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends {packages}
{python_check}
python3 -m venv --system-site-packages /autograder/venv
/autograder/venv/bin/python -m pip install --quiet {requirements}
{hide}
cd {source}
# the pre-flight: the reference must score full marks on one item behind the wall grading uses
if ! /autograder/venv/bin/python -m parity.grading wall-check --rubric {source}/rubric.json
then
    echo "error: this image cannot grade safely (what to change is above);" >&2
    echo "the build fails so that no student is graded by it" >&2
    exit 1
fi
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Runs for every submission. Grading writes /autograder/results/results.json itself, also
# when it fails; nothing the submission does can write it.
cd /autograder/source
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec /autograder/venv/bin/python -m parity.grading gradescope \\
    --submission /autograder/submission \\
    --results /autograder/results/results.json \\
    --rubric /autograder/source/rubric.json
"""


def python_floor() -> tuple[int, int] | None:
    """The oldest Python the pinned NumPy and Hypothesis install on (their Requires-Python)."""
    floors = []
    for name in ("numpy", "hypothesis"):
        spec = metadata.metadata(name)["Requires-Python"] or ""
        found = re.search(r">=\s*(\d+)\.(\d+)", spec)
        if found:
            floors.append((int(found[1]), int(found[2])))
    return max(floors) if floors else None


def python_check_sh() -> str:
    """Shell lines that fail, naming what to choose, where python3 is older than the pins
    need."""
    floor = python_floor()
    if floor is None:
        return "# (the pinned packages state no oldest Python)"
    pins = " and ".join(requirements())
    return (f"python3 -c 'import sys; sys.exit(sys.version_info[:2] < {floor})' || {{\n"
            f"    echo \"error: {pins} need Python >= {floor[0]}.{floor[1]}; this image's "
            f"python3 is $(python3 -V 2>&1). Choose the Ubuntu 24.04 base image (Python 3.12) "
            f"in the assignment's autograder settings.\" >&2\n"
            f"    exit 1\n}}")


def requirements() -> list[str]:
    """Pinned requirements: the versions grading runs with here."""
    return [f"{name}=={metadata.version(name)}" for name in ("numpy", "hypothesis")]


def grader_files(rubric: Rubric) -> dict[str, bytes]:
    """What grading needs beside the platform's scripts: the reference ``scratch/``, the
    harness ``parity/``, the rubric and the pins (path -> content)."""
    import json

    files: dict[str, bytes] = {}
    for package in ("scratch", "parity"):
        for path in sorted((PROJECT / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            files[path.relative_to(PROJECT).as_posix()] = path.read_bytes()
    files["rubric.json"] = (json.dumps(rubric.to_dict(), indent=2) + "\n").encode()
    files["requirements.txt"] = ("\n".join(requirements()) + "\n").encode()
    return files


def with_secret_seed(rubric: Rubric | None) -> Rubric:
    """The rubric, with a fresh secret seed where it sets none: a course's own cases, the same
    for every submission, so that a table of answers to another's is useless."""
    rubric = rubric or default_rubric()
    if rubric.seed is None:
        rubric = replace(rubric, seed=secrets.randbelow(2**32 - 1) + 1)
    return rubric


def bundle_files(rubric: Rubric) -> dict[str, bytes]:
    """path in the zip -> content."""
    from parity.grading.preflight import hide_harness_sh

    files = grader_files(rubric)
    files["setup.sh"] = SETUP_SH.format(
        packages=PACKAGES, python_check=python_check_sh(),
        requirements=" ".join(requirements()), hide=hide_harness_sh(SOURCE, ("/autograder",)),
        source=SOURCE).encode()
    files["run_autograder"] = RUN_AUTOGRADER.encode()
    return files


def write_bundle(out: str | Path, rubric: Rubric | None = None) -> Path:
    """Write the autograder zip (files at its root, as Gradescope wants)."""
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"the bundle must be a .zip file, got {str(out)!r}")
    files = bundle_files(with_secret_seed(rubric))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            executable = name in ("setup.sh", "run_autograder")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return out
