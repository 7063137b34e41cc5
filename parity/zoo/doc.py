"""The zoo's list in docs/parity.md, written from parity.zoo.MUTANTS.

    python -m parity.zoo.doc           # rewrite the list in docs/parity.md
    python -m parity.zoo.doc --check   # exit 1 if the list there is not MUTANTS's

The list sits between the two marker lines ``BEGIN`` and ``END``; the rest of the file is
left as it is. tests/test_parity_docs.py checks that the two agree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parity.spec import MODES, between_markers
from parity.zoo.mutants import MUTANTS

BEGIN = "<!-- zoo list: written by `python -m parity.zoo.doc`, do not edit by hand -->"
END = "<!-- end of zoo list -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "parity.md"


def zoo_list() -> list[str]:
    """The Markdown table of the members: name, the bug, the modes it shows in, what breaks."""
    lines = ["| member | the bug | modes | what the harness sees diverge |",
             "| --- | --- | --- | --- |"]
    for mutant in MUTANTS:
        modes = ", ".join(MODES[k].words for k in mutant.modes)
        cells = [f"`{mutant.name}`", mutant.description, modes, mutant.breaks]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def with_list(text: str) -> str:
    """``text`` with the part between the markers replaced by the current list."""
    return between_markers(text, BEGIN, END, zoo_list())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parity.zoo.doc", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    p.add_argument("--doc", type=Path, default=DOC, help=f"the file (default: {DOC})")
    args = p.parse_args(argv)
    text = args.doc.read_text()
    new = with_list(text)
    if new == text:
        return 0
    if args.check:
        print(f"{args.doc}: the zoo list is out of date; run python -m parity.zoo.doc",
              file=sys.stderr)
        return 1
    args.doc.write_text(new)
    print(f"{args.doc}: zoo list rewritten ({len(MUTANTS)} members)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
