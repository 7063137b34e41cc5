"""The specification of the study functions (parity/spec.py) against the code and the docs, and
the layers of parity/: the table holds one entry for each function the handout cuts out, what
it says of a function is true of the code, docs/grading.md shows it, and nothing below the
grader imports the grader."""

import ast
import inspect
from pathlib import Path

import pytest

import scratch
from parity import spec
from parity.grading.markers import find_regions

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(scratch.__file__).resolve().parent


def test_one_entry_for_each_function_the_handout_cuts_out():
    regions = {(f"scratch.{r.path[len('scratch/'):-3].replace('/', '.')}", r.function)
               for path in PACKAGE.rglob("*.py")
               for r in find_regions(path.read_text(), f"scratch/{path.relative_to(PACKAGE)}")}
    assert regions == {(f.module, f.name) for f in spec.FUNCTIONS}


@pytest.mark.parametrize("function", spec.FUNCTIONS, ids=lambda f: f.name)
def test_an_entry_is_true_of_the_code(function):
    code = function.resolve()
    assert function.arguments() == tuple(inspect.signature(code).parameters)[
        1 if "." in function.name else 0:]
    source = inspect.getsource(code)
    for callee in function.callees:  # it calls what the table says it calls
        name = spec.BY_TARGET[callee].name.rpartition(".")[2]
        assert name in source or f"_{name.split('_')[1]}_{name.split('_')[2]}" in source, callee
    for mode in function.modes:
        assert mode in spec.MODES
    assert function.items and all(i in spec.ITEMS_BY_ID for i in function.items)


def test_the_outputs_read_the_table():
    names = spec.output_names()
    assert names["rnn_step_forward"] == ("h", "cache")
    assert names["lstm_step_backward"] is None  # LSTMStepGrads
    assert names["rnn_cell_backward"] is None  # a NamedTuple: its fields name its parts


def test_a_mode_is_stated_once():
    for mode, m in spec.MODES.items():
        assert m.gates == scratch.GATES[mode]
        assert spec.mode_named(m.cls + "Cell").cls == m.cls
        options = spec.layer_options(mode, 0)
        getattr(scratch, m.cls)(2, 3, **options)  # the options build a layer of the mode
    assert spec.mode_of("RNN", "relu") == "RNN_RELU"


def test_docs_grading_shows_the_items_table():
    docs = ROOT / "docs" / "grading.md"
    text = docs.read_text()
    assert spec.with_items_table(text) == text, "run: python -m parity.spec"
    assert "\n".join(spec.items_table(stand_ins=True)) in text


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_layers_run_one_way():
    parity = ROOT / "parity"
    for path in parity.rglob("*.py"):
        if "grading" in path.parts or path.name == "__main__.py":  # the one dispatcher
            continue
        assert not {m for m in _imports(path) if m.startswith("parity.grading")}, path
    assert "parity.grading.skeleton" not in _imports(parity / "handout.py")
    # the specification ships in the handout: the standard library (scratch only for GATES)
    spec_imports = {m.split(".")[0] for m in _imports(parity / "spec.py")}
    assert spec_imports <= {"__future__", "ast", "functools", "importlib", "inspect", "json",
                            "textwrap", "dataclasses", "pathlib"}, spec_imports
    for name in ("check.py", "calls.py", "case.py", "diff.py", "tolerances.py"):
        tops = {m.split(".")[0] for m in _imports(parity / name)}
        assert "hypothesis" not in tops and "scratch" not in tops, name
        assert "torch" not in tops or name == "check.py", name
