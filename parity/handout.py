"""What the handout carries besides ``scratch/``: the student's own check.

``python -m parity skeleton OUT`` writes, beside ``OUT/scratch/``, a small ``OUT/parity/``
package holding only the checker (``parity/check.py``, NumPy and, when installed, torch) and
the rubric's visible items it checks item by item, so that ``python -m parity check`` runs in
a fresh unpack of the handout. No reference code goes with it.
"""

from __future__ import annotations

import json
from pathlib import Path

INSTALL = "pip install numpy torch"

INIT = '''"""The handout's checker: `python -m parity check` (see check.py)."""
'''

MAIN = '''"""`python -m parity check [DIR]`: check your functions item by item (see check.py)."""

import sys

if sys.argv[1:2] != ["check"]:
    print("usage: python -m parity check [DIR] [--only FUNCTION,...]", file=sys.stderr)
    sys.exit(2)

from parity.check import main  # noqa: E402

sys.exit(main(sys.argv[2:]))
'''


def checker_files(rubric) -> dict[str, str]:
    """{path in the handout: text} of the checker package, for this rubric's visible items."""
    from parity.grading.items import ITEMS_BY_ID

    items = [{"id": e.id, "title": ITEMS_BY_ID[e.id].title,
              "grades": list(ITEMS_BY_ID[e.id].grades)}
             for e in rubric.graded if e.visibility == "visible"]
    source = Path(__file__).with_name("check.py").read_text()
    return {"parity/__init__.py": INIT, "parity/__main__.py": MAIN,
            "parity/check.py": source,
            "parity/check_items.json": json.dumps(items, indent=2) + "\n"}


def readme_section() -> list[str]:
    """The README's lines on the check."""
    return [
        "## Check your work before you hand it in",
        "",
        "Install what the check needs once:",
        "",
        "```sh",
        INSTALL,
        "```",
        "",
        "then run, in this directory:",
        "",
        "```sh",
        "python -m parity check                          # every graded function",
        "python -m parity check --only gru_cell_backward  # one function",
        "```",
        "",
        "Each function is checked on its own, item by item as below: a forward function",
        "against the same equations computed by torch, a backward function against torch's",
        "autograd of those equations. Where a function calls others you write, torch answers",
        "for those, so a mistake shows up in the function that makes it. For each function",
        "it prints PASS or FAIL and, for a failure, the smallest failing case, the first",
        "value that differs and its relative error. Without torch the backward functions",
        "are checked against finite differences of your own forward functions, and the",
        "forward functions are not checked. Passing the check is a good sign, not the grade:",
        "the grader draws more cases and compares the caches too.",
        "",
        "The project's study guide (docs/study/ in the repository this handout comes from)",
        "shows every line of these functions' solutions; it is not part of the handout. Its",
        "exercises page (docs/study/exercises.md) has checks of your own package and no",
        "solution lines.",
        "",
    ]
