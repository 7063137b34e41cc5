"""A zoo of wrong implementations: copies of scratch/ with one realistic bug each.

The harness must flag every one of them, naming the tensor that diverged; the meta-tests
(tests/test_parity_zoo.py) check that it does. A member is materialized as a directory
holding a ``scratch/`` package, exactly what a student's copy would be, for
``python -m parity --impl DIR``:

    from parity import zoo
    path = zoo.materialize("gru_textbook", "/tmp/zoo")   # -> /tmp/zoo/gru_textbook
    # python -m parity zoo /tmp/zoo                        (all members)

Each member is a list of exact source-text patches of the current scratch/ (see
parity/zoo/mutants.py). When scratch/ changes so that a patch's text no longer occurs exactly
once, ``materialize`` raises PatchError naming the member, the file and the text to update.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from parity.zoo.mutants import MUTANTS, Mutant, Patch

BY_NAME: dict[str, Mutant] = {m.name: m for m in MUTANTS}

__all__ = ["BY_NAME", "MUTANTS", "Mutant", "Patch", "PatchError", "materialize",
           "patched_sources", "scratch_source_dir"]


class PatchError(RuntimeError):
    """A zoo patch no longer matches scratch/'s source exactly once."""


def scratch_source_dir() -> Path:
    """The project's scratch/ package directory (the original every member is a copy of)."""
    spec = importlib.util.find_spec("scratch")
    if spec is None or spec.origin is None:
        raise PatchError("cannot find the scratch package to copy")
    return Path(spec.origin).parent


def patched_sources(mutant: Mutant, source: Path | None = None) -> dict[str, str]:
    """file -> new text, for every file the mutant changes; raises PatchError on a mismatch."""
    source = source or scratch_source_dir()
    texts: dict[str, str] = {}
    for patch in mutant.patches:
        path = source / patch.file
        if patch.file not in texts:
            if not path.is_file():
                raise PatchError(f"zoo member {mutant.name!r}: scratch/{patch.file} does not "
                                 f"exist in {source}")
            texts[patch.file] = path.read_text()
        count = texts[patch.file].count(patch.old)
        if count != 1:
            raise PatchError(
                f"zoo member {mutant.name!r} no longer applies: scratch/{patch.file} must "
                f"contain this text exactly once, but it occurs {count} times:\n"
                f"---\n{patch.old}\n---\n"
                f"scratch/{patch.file} has changed; update the patch in "
                f"parity/zoo/mutants.py to the new source (the bug: {mutant.description})"
            )
        texts[patch.file] = texts[patch.file].replace(patch.old, patch.new)
    return texts


def materialize(name: str, out_dir, source: Path | None = None) -> Path:
    """Write member ``name`` to ``out_dir/name/scratch/`` and return ``out_dir/name``.

    The copy is the whole scratch/ package (without caches) with the member's patches
    applied; an earlier copy at the same place is replaced.
    """
    if name not in BY_NAME:
        raise KeyError(f"no zoo member named {name!r}; members: {sorted(BY_NAME)}")
    source = source or scratch_source_dir()
    texts = patched_sources(BY_NAME[name], source)  # everything checked before writing
    root = Path(out_dir) / name
    package = root / "scratch"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for file, text in texts.items():
        (package / file).write_text(text)
    return root
