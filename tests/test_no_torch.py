"""scratch is NumPy only: importing it and every one of its submodules loads no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = """
import importlib, json, pkgutil, sys
import scratch
names = ["scratch"]
for info in pkgutil.walk_packages(scratch.__path__, prefix="scratch."):
    importlib.import_module(info.name)
    names.append(info.name)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print(json.dumps({"imported": names, "torch_modules": loaded}))
"""


def test_scratch_and_all_its_submodules_import_without_torch():
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    imported = set(report["imported"])
    # the walk reached the package's modules, subpackages included
    assert {"scratch.recurrent", "scratch.cells", "scratch.functional.lstm_cell"} <= imported
    assert report["torch_modules"] == [], f"torch was imported: {report['torch_modules']}"
