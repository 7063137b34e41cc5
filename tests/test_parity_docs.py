"""docs/parity.md against the code it describes: the zoo list, the quoted tolerance policy and
the profiles table must be the code's, so that the guide cannot drift from the harness."""

import re
from pathlib import Path

import pytest

from parity import tolerances, zoo
from parity.strategies import PROFILES
from parity.zoo import doc

DOC = Path(__file__).resolve().parents[1] / "docs" / "parity.md"


def words(text: str) -> str:
    return " ".join(text.split())


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : None if end < 0 else end]


def test_the_zoo_list_is_written_from_mutants():
    text = DOC.read_text()
    assert doc.with_list(text) == text, "run: python -m parity.zoo.doc"
    zoo_part = text.split(doc.BEGIN)[1].split(doc.END)[0]
    listed = re.findall(r"^\| `([A-Za-z0-9_]+)` \|", zoo_part, re.M)
    assert listed == [m.name for m in zoo.MUTANTS]
    assert doc.main(["--check"]) == 0


def test_doc_check_fails_on_a_stale_list_and_rewrites_it(tmp_path, capsys):
    stale = tmp_path / "parity.md"
    stale.write_text(f"# t\n{doc.BEGIN}\n| `gone` | x | y | z |\n{doc.END}\ntail\n")
    assert doc.main(["--check", "--doc", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert doc.main(["--doc", str(stale)]) == 0
    text = stale.read_text()
    assert "`gone`" not in text and "`gru_textbook`" in text and text.endswith("\ntail\n")
    with pytest.raises(ValueError, match="must hold the line"):
        doc.with_list("no markers here")


def test_the_tolerance_policy_is_quoted_verbatim():
    part = section(DOC.read_text(), "How close is close enough")
    quote = "\n".join(line[1:] for line in part.splitlines() if line.startswith(">"))
    source = tolerances.__doc__.split("\n", 1)[1]  # without the title line
    assert words(quote) == words(source), "copy parity/tolerances.py's docstring into the doc"


def test_the_profiles_table_is_the_code():
    part = section(DOC.read_text(), "What it proves, and how")
    for profile in PROFILES.values():
        row = next(line for line in part.splitlines() if line.startswith(f"| `{profile.name}`"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:6] == [str(profile.examples), f"1-{profile.max_size}",
                              f"1-{profile.max_seq_len}", f"1-{profile.max_batch}",
                              f"1-{profile.max_layers}"], row
        assert cells[6].startswith("yes" if profile.derandomize else "no"), row
