"""The Gradescope autograder bundle: this harness, the reference, the rubric, two scripts.

Gradescope unpacks the zip into /autograder/source, runs ``setup.sh`` once (as root) when it
builds the image, and ``run_autograder`` for every submission, whose files it puts in
/autograder/submission; the grade goes to /autograder/results/results.json.

``setup.sh`` installs bubblewrap (the sandbox every item runs in) after refreshing the package
lists, makes a virtual environment with the exact NumPy and Hypothesis versions of the machine
that built the bundle (the same versions draw the same cases), makes the source readable by
root only, and checks that the sandbox starts. ``run_autograder`` runs ``python -m
parity.grading gradescope``, which checks the sandbox again, grades the submission and writes
results.json; where the sandbox cannot start it grades nothing and writes a results.json that
says so (Gradescope's containers may forbid the namespaces bubblewrap needs: then the
instructor learns it from the first submission, not from a forged grade). torch is not needed
to grade.
"""

from __future__ import annotations

import io
import secrets
import zipfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from parity.grading.rubric import Rubric, default_rubric

PROJECT = Path(__file__).resolve().parents[2]

SETUP_SH = """#!/usr/bin/env bash
# Runs once, as root, when Gradescope builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv bubblewrap util-linux
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet {requirements}
# Only root may read the harness and the reference; submissions run in a sandbox that holds
# neither, as a uid of their own.
chmod -R go-rwx /autograder/source
cd /autograder/source
/autograder/venv/bin/python -m parity.grading sandbox-check || \
    echo "warning: the grading sandbox cannot start in this image; run_autograder will refuse"
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


def requirements() -> list[str]:
    """Pinned requirements: the versions grading runs with here."""
    return [f"{name}=={metadata.version(name)}" for name in ("numpy", "hypothesis")]


def bundle_files(rubric: Rubric) -> dict[str, bytes]:
    """path in the zip -> content."""
    import json

    files: dict[str, bytes] = {}
    for package in ("scratch", "parity"):
        for path in sorted((PROJECT / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            files[path.relative_to(PROJECT).as_posix()] = path.read_bytes()
    files["rubric.json"] = (json.dumps(rubric.to_dict(), indent=2) + "\n").encode()
    files["requirements.txt"] = ("\n".join(requirements()) + "\n").encode()
    files["setup.sh"] = SETUP_SH.format(requirements=" ".join(requirements())).encode()
    files["run_autograder"] = RUN_AUTOGRADER.encode()
    return files


def write_bundle(out: str | Path, rubric: Rubric | None = None) -> Path:
    """Write the autograder zip (files at its root, as Gradescope wants)."""
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"the bundle must be a .zip file, got {str(out)!r}")
    rubric = rubric or default_rubric()
    if rubric.seed == 0:  # a course's own cases: a table of answers to another's is useless
        rubric = replace(rubric, seed=secrets.randbelow(2**32 - 1) + 1)
    files = bundle_files(rubric)
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
