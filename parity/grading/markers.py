"""Solution markers: the comment lines that mark, in the reference, the code a student writes.

    def rnn_step_forward(x_proj, h_prev, W_hh, b_hh, nonlinearity="tanh"):
        \"\"\"docstring: equations and shapes (the student keeps it)\"\"\"
        ### BEGIN SOLUTION
        ### HINT: pre = x_proj + h_prev W_hh^T (+ b_hh); h = act(pre)
        act, _ = ACTIVATIONS[nonlinearity]
        ...
        return h, RNNStepCache(h_prev, h, nonlinearity)
        ### END SOLUTION

The markers are comments, so the reference runs, reads and is tested as it is. In the
student's version (``skeleton``) each region becomes its hints as ``# TODO:`` lines and a
``raise NotImplementedError``; everything outside the regions (signatures, docstrings, cache
classes, argument checks) stays as it is. The convention is nbgrader's (``### BEGIN SOLUTION``
/ ``### END SOLUTION``), which instructors know.

Rules, checked with the file and line of any breach: a region opens and closes at the same
indentation, inside a function; regions do not nest; ``### HINT:`` lines sit inside a region.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"


class MarkerError(ValueError):
    """Solution markers that break the rules; the message names the file and line."""


@dataclass(frozen=True)
class Region:
    """One marked region: lines begin..end (1-based, the marker lines included)."""

    path: str
    begin: int
    end: int
    indent: str
    function: str  # the qualified name of the function the region is in
    hints: tuple[str, ...]


def find_regions(text: str, path: str = "<source>") -> list[Region]:
    """The regions of one source file, in order."""
    lines = text.splitlines()
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as error:
        raise MarkerError(f"{path}:{error.lineno}: not valid Python: {error.msg}") from None
    functions = _function_spans(tree)
    regions: list[Region] = []
    open_at: int | None = None
    indent = ""
    hints: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        here = line[: len(line) - len(line.lstrip())]
        if stripped.startswith(BEGIN):
            if open_at is not None:
                raise MarkerError(f"{path}:{number}: {BEGIN} inside the region opened at line "
                                  f"{open_at} (regions do not nest)")
            open_at, indent, hints = number, here, []
        elif stripped.startswith(END):
            if open_at is None:
                raise MarkerError(f"{path}:{number}: {END} without a {BEGIN} before it")
            if here != indent:
                raise MarkerError(f"{path}:{number}: {END} is indented differently from the "
                                  f"{BEGIN} at line {open_at}")
            if number == open_at + 1 + len(hints):
                raise MarkerError(f"{path}:{open_at}: the region holds no code")
            function = _enclosing(functions, open_at, number)
            if function is None:
                raise MarkerError(f"{path}:{open_at}: a region must lie inside one function")
            regions.append(Region(path, open_at, number, indent, function, tuple(hints)))
            open_at = None
        elif stripped.startswith(HINT):
            if open_at is None:
                raise MarkerError(f"{path}:{number}: {HINT} outside a solution region")
            hints.append(stripped[len(HINT):].strip())
    if open_at is not None:
        raise MarkerError(f"{path}:{open_at}: {BEGIN} is never closed by {END}")
    return regions


def _function_spans(tree: ast.AST) -> list[tuple[int, int, str]]:
    spans = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def _enclosing(spans, begin: int, end: int) -> str | None:
    """The innermost function whose body holds the region's code, lines begin+1..end-1 (the
    closing marker may follow the function's last statement)."""
    best = None
    for first, last, name in spans:
        if first < begin and end - 1 <= last and (best is None or first > best[0]):
            best = (first, name)
    return None if best is None else best[1]


def strip_solutions(text: str, path: str = "<source>") -> tuple[str, list[Region]]:
    """The student's version of a file, and its regions. The result is checked to compile."""
    regions = find_regions(text, path)
    if not regions:
        return text, regions
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    position = 0
    for region in regions:
        out += lines[position: region.begin - 1] + _replacement(region)
        position = region.end
    out += lines[position:]
    result = "".join(out)
    try:
        compile(result, path, "exec")
    except SyntaxError as error:
        raise MarkerError(f"{path}: the student version does not compile at line "
                          f"{error.lineno}: {error.msg}") from None
    return result, regions


def _replacement(region: Region) -> list[str]:
    """The hints as ``# TODO:`` lines, then the raise."""
    hints = region.hints or ("write this part (the docstring gives the equations and shapes)",)
    out = [f"{region.indent}{'# TODO: ' if i == 0 else '#       '}{hint}\n"
           for i, hint in enumerate(hints)]
    name = region.function.rpartition(".")[2]
    return out + [f'{region.indent}raise NotImplementedError("{name}: not written yet")\n']


def regions_in_tree(root: Path) -> list[Region]:
    """Every region in the .py files under root (paths relative to root)."""
    regions = []
    for path in sorted(Path(root).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root).as_posix()
        regions += find_regions(path.read_text(), rel)
    return regions
