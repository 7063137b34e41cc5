"""A zoo of wrong implementations: copies of scratch/ with one realistic bug each.

The harness must flag every one of them, naming the tensor that diverged; the meta-tests
(tests/test_parity_zoo.py) check that it does. A member is materialized as a directory
holding a ``scratch/`` package, exactly what a student's copy would be, for
``python -m parity --impl DIR``:

    from parity import zoo
    path = zoo.materialize("gru_textbook", "/tmp/zoo")   # -> /tmp/zoo/gru_textbook
    # python -m parity zoo /tmp/zoo                        (all members)

Each member is a list of structural patches of the current scratch/ (parity/zoo/mutants.py
says how they match); when scratch/ changes so that the code a patch names no longer occurs
exactly once in its function, ``materialize`` raises PatchError naming the member, the file,
the function and the code.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import textwrap
from pathlib import Path

from parity import spec
from parity.zoo.mutants import MUTANTS, Mutant, Patch

BY_NAME: dict[str, Mutant] = {m.name: m for m in MUTANTS}


def items_at_stake(mutant: Mutant) -> dict[str, tuple[str, ...]]:
    """{study function the member changes: the items that grade it} (parity.spec): the
    member must lose at least one item of each, and no item of none."""
    functions = [name for patch in mutant.patches
                 for name in (patch.callers or (patch.function,))]
    return {name: spec.BY_NAME[name].items for name in functions}


class PatchError(RuntimeError):
    """A zoo patch no longer matches scratch/'s source exactly once."""


def scratch_source_dir() -> Path:
    """The project's scratch/ package directory (the original every member is a copy of)."""
    found = importlib.util.find_spec("scratch")
    if found is None or found.origin is None:
        raise PatchError("cannot find the scratch package to copy")
    return Path(found.origin).parent


def _pattern(code: str) -> tuple[type, str]:
    """(ast.stmt or ast.expr, the tree's dump without positions) of one statement or
    expression."""
    body = ast.parse(textwrap.dedent(code)).body
    if len(body) != 1:
        raise ValueError(f"a zoo patch replaces one statement or expression, got {code!r}")
    if isinstance(body[0], ast.Expr):
        return ast.expr, ast.dump(body[0].value)
    return ast.stmt, ast.dump(body[0])


def _function(tree: ast.Module, qualname: str):
    """The function named by its qualified name (``Class.method``), or None."""
    node: ast.AST = tree
    for part in qualname.split("."):
        found = [child for child in getattr(node, "body", [])
                 if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and child.name == part]
        if len(found) != 1:
            return None
        node = found[0]
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def apply_patch(text: str, patch: Patch) -> tuple[str, int | None]:
    """(the new text, the number of places the patch's old code matched, None when the text
    has no such function). The text changes only when that number is 1: then the matched
    statement or expression is replaced."""
    node_type, wanted = _pattern(patch.old)
    function = _function(ast.parse(text), patch.function)
    if function is None:
        return text, None
    inner = [node for statement in function.body for node in ast.walk(statement)]
    matches = [node for node in inner if isinstance(node, node_type) and ast.dump(node) == wanted]
    if len(matches) != 1:
        return text, len(matches)
    node = matches[0]
    end_line = node.end_lineno or node.lineno
    lines = text.splitlines(keepends=True)
    first, last = lines[node.lineno - 1], lines[end_line - 1]
    # the ast's columns are UTF-8 byte offsets into their lines
    head = "".join(lines[:node.lineno - 1]) + first.encode()[:node.col_offset].decode()
    tail = last.encode()[node.end_col_offset or 0:].decode() + "".join(lines[end_line:])
    if node_type is ast.expr:
        new = f"({patch.new})"
    else:
        indent = first[: len(first) - len(first.lstrip())]
        new_lines = textwrap.dedent(patch.new).strip("\n").splitlines() or ["pass"]
        new = ("\n" + indent).join(new_lines)
    return head + new + tail, 1


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
        try:
            new_text, count = apply_patch(texts[patch.file], patch)
        except SyntaxError as error:
            raise PatchError(f"zoo member {mutant.name!r}: scratch/{patch.file} is not valid "
                             f"Python: {error}") from None
        if count != 1:
            where = (f"no function {patch.function} (which it patches)" if count is None
                     else f"the function {patch.function}")
            raise PatchError(
                f"zoo member {mutant.name!r} no longer applies: scratch/{patch.file} has "
                f"{where}, which must contain this code exactly once, but it occurs "
                f"{count or 0} times:\n---\n{patch.old}\n---\n"
                f"scratch/{patch.file} has changed; update the patch in "
                f"parity/zoo/mutants.py to the new source (the bug: {mutant.description})"
            )
        try:
            compile(new_text, patch.file, "exec")
        except SyntaxError as error:
            raise PatchError(f"zoo member {mutant.name!r}: the patched scratch/{patch.file} "
                             f"does not compile: {error}") from None
        texts[patch.file] = new_text
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
