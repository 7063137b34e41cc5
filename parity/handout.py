"""What the handout carries besides ``scratch/``: the student's own check.

``python -m parity skeleton OUT`` writes, beside ``OUT/scratch/``, the part of ``parity/`` the
check runs on (SHIPPED: NumPy and the standard library), torch's equations
(``torch_impl/equations.py``, used where torch is installed), the study functions' output
names read from the reference's code (the handout's copy has no return statements to read)
and the ids of the items the grader shows, so that ``python -m parity check`` runs in a
fresh unpack of the handout. No reference code goes with it. This module imports neither the
grader nor torch: the grader's skeleton calls it.
"""

from __future__ import annotations

import json
from pathlib import Path

from parity import spec

SHIPPED = ("check.py", "spec.py", "case.py", "calls.py", "diff.py", "tolerances.py")

INIT = '''"""The handout's check: `python -m parity check` (see check.py)."""
'''
TORCH_INIT = '''"""torch's equations of the recurrent layers: the check's reference."""
'''
MAIN = '''"""`python -m parity check [DIR]`: the grader's visible items on its public cases."""

import sys

if sys.argv[1:2] != ["check"]:
    print("usage: python -m parity check [DIR] [--only ITEM,...]", file=sys.stderr)
    sys.exit(2)

from parity.check import main  # noqa: E402

sys.exit(main(sys.argv[2:]))
'''


def checker_files(visible: list[str]) -> dict[str, str]:
    """{path in the handout: text} of the check, for the items of ids ``visible``."""
    here = Path(__file__).parent
    files = {f"parity/{name}": (here / name).read_text() for name in SHIPPED}
    equations = here.parent / "torch_impl" / "equations.py"
    files.update({
        "parity/__init__.py": INIT, "parity/__main__.py": MAIN,
        f"parity/{spec.OUTPUTS_FILE}": json.dumps(spec.output_names(), indent=2) + "\n",
        f"parity/{spec.VISIBLE_FILE}": "\n".join(visible) + "\n",
        "torch_impl/__init__.py": TORCH_INIT, "torch_impl/equations.py": equations.read_text(),
    })
    return files


def readme_section(weights: dict[str, float], hidden: int, hidden_points: float) -> list[str]:
    """The README's lines on the items and the check: the items shown (id: points)."""
    lines = [
        "## How it is graded",
        "",
        "Each item below is graded on its own, on the same small random cases for everyone,",
        "against a reference that agrees with torch.nn to 1e-10. An item grades a few",
        "functions and runs the reference for the study functions they call, so a mistake in",
        "one function costs only the items that grade it. A failing item shows the smallest",
        "case that fails and the value that differs most.",
        "",
        *spec.items_table(weights),
    ]
    if hidden:
        lines += ["", f"{hidden} more item(s), worth {hidden_points:g} points, are graded but "
                      "not shown here."]
    return lines + [
        "",
        "## Check your work before you hand it in",
        "",
        "Install what the check needs once:",
        "",
        "```sh",
        "pip install numpy torch",
        "```",
        "",
        "then run, in this directory:",
        "",
        "```sh",
        "python -m parity check              # every item above",
        "python -m parity check --only bptt  # one item",
        "```",
        "",
        "The check runs each item above on the grader's public cases (the grader runs them",
        "first, then cases of its own), against torch's equations, and prints the grader's",
        "feedback word for word. Without torch, only the items of backward functions are",
        "judged, against finite differences of your own forward functions; it says why the",
        "others are not. Passing the check is a good sign, not the grade: the grader draws",
        "more cases.",
        "",
        "The project's study guide (docs/study/ in the repository this handout comes from)",
        "shows every line of these functions' solutions; it is not part of the handout. Its",
        "exercises page (docs/study/exercises.md) has checks of your own package and no",
        "solution lines.",
        "",
    ]
