"""The student's version of ``scratch/``: the reference with its marked regions taken out.

``write_skeleton(source, out)`` writes ``out/scratch/`` (every file of the package, each marked
region replaced by its hints and ``raise NotImplementedError``) and ``out/README.md``, the
list of what to write, where, and how it is graded. The package imports and its modules build;
every function with a region raises NotImplementedError until it is written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from parity.grading.markers import MarkerError, Region, strip_solutions
from parity.grading.rubric import Rubric, default_rubric
from parity.handout import checker_files, readme_section


@dataclass(frozen=True)
class Skeleton:
    out: Path
    files: tuple[str, ...]  # every file written, relative to out
    regions: tuple[Region, ...]


def write_skeleton(out: str | Path, source: str | Path | None = None,
                   rubric: Rubric | None = None, force: bool = False) -> Skeleton:
    """Write the student version of the package at ``source`` (default: the reference)."""
    from parity.grading.preflight import reference_submission

    source = Path(source) if source is not None else reference_submission() / "scratch"
    out = Path(out)
    if not (source / "__init__.py").is_file():
        raise FileNotFoundError(f"source must be a package directory holding __init__.py, "
                                f"got {str(source)!r}")
    target = out / "scratch"
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{str(out)!r} exists and is not empty: choose a new directory "
                              "(or pass force=True / --force to overwrite)")
    files = [path.relative_to(source) for path in sorted(source.rglob("*"))
             if path.is_file() and "__pycache__" not in path.relative_to(source).parts]
    texts: dict[Path, str] = {}
    regions: list[Region] = []
    for rel in files:
        if rel.suffix == ".py":
            text, found = strip_solutions((source / rel).read_text(),
                                          f"scratch/{rel.as_posix()}")
            texts[rel] = text
            regions += found
    if not regions:
        raise MarkerError(f"no solution markers in {source}: mark the code students write "
                          "with ### BEGIN SOLUTION / ### END SOLUTION")
    if target.exists():
        shutil.rmtree(target)
    written = []
    for rel in files:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel in texts:
            dest.write_text(texts[rel])
        else:
            shutil.copyfile(source / rel, dest)
        written.append(f"scratch/{rel.as_posix()}")
    rubric = rubric or default_rubric()
    visible = [e.id for e in rubric.graded if e.visibility == "visible"]
    for rel, text in checker_files(visible).items():  # the student's own check
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
        written.append(rel)
    (out / "README.md").write_text(student_readme(regions, rubric))
    written.append("README.md")
    return Skeleton(out, tuple(written), tuple(regions))


def student_readme(regions: list[Region], rubric: Rubric) -> str:
    lines = [
        "# Recurrent networks from scratch: what to write",
        "",
        "This is a NumPy package with the same interface as torch.nn's RNN, LSTM and GRU.",
        "The parts marked `raise NotImplementedError` are yours: each docstring gives the",
        "equations and the shapes, and the `# TODO:` lines say what the part does. Keep the",
        "signatures, the cache classes and their fields: the grader calls your functions",
        "with them. Use NumPy and the standard library only.",
        "",
        "## The parts to write",
        "",
    ]
    by_file: dict[str, list[Region]] = {}
    for region in regions:
        by_file.setdefault(region.path, []).append(region)
    for path, found in by_file.items():
        lines.append(f"- `{path}`: " + ", ".join(f"`{r.function}`" for r in found))
    hidden = [e for e in rubric.graded if e.visibility != "visible"]
    lines += ["", *readme_section({e.id: e.weight for e in rubric.graded
                                   if e.visibility == "visible"},
                                  len(hidden), sum(e.weight for e in hidden))]
    return "\n".join(lines) + "\n"
