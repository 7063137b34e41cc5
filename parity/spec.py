"""The study functions: one entry for each function the handout cuts out of ``scratch/``.

Everything that runs, checks or grades these functions reads this table and nothing else:
``make parity``'s function groups (``parity.units``), the student's check (``parity.check``),
the grader's items and stand-ins (``parity.grading.items``, ``oracles``), the zoo's
expectations, the handout README's table and ``docs/grading.md``'s (a test holds that one to
this table). An entry says what the code cannot: its level, the modes it serves, the study
functions it calls (which a stand-in may answer for when it is graded on its own) and the
items that grade it. What the code does say is read from the code: the argument names from
``inspect.signature``, the output names from the returned NamedTuple's ``_fields`` or from
the function's own ``return`` statement.

This module ships in the handout: NumPy's world and the standard library only, importing
neither torch nor the grader.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import textwrap
from dataclasses import dataclass
from pathlib import Path


# -- the modes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mode:
    """One recurrent mode, as torch, the study functions and a student name it."""

    name: str  # RNN_TANH, RNN_RELU, LSTM, GRU
    cls: str  # RNN, LSTM, GRU
    cell: str  # rnn, lstm, gru: the prefix of its study functions
    nonlinearity: str | None  # tanh or relu for the plain RNN, else None
    words: str  # "RNN (tanh)"

    @property
    def gates(self) -> int:
        """G, how many blocks of H rows W_ih has: the library's own GATES."""
        return importlib.import_module("scratch").GATES[self.name]


MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("RNN_TANH", "RNN", "rnn", "tanh", "RNN (tanh)"),
    Mode("RNN_RELU", "RNN", "rnn", "relu", "RNN (relu)"),
    Mode("LSTM", "LSTM", "lstm", None, "LSTM"),
    Mode("GRU", "GRU", "gru", None, "GRU"),
)}
ALL_MODES = tuple(MODES)
# {a cell's prefix: its modes}: {"rnn": ("RNN_TANH", "RNN_RELU"), "lstm": ("LSTM",), ...}
CELLS = {m.cell: tuple(k for k in MODES if MODES[k].cell == m.cell) for m in MODES.values()}
RNN_MODES = CELLS["rnn"]


def mode_named(word: str) -> Mode:
    """The (first) mode a word names: the mode, its layer class (``LSTM``), its cell class
    (``LSTMCell``) or its functions' prefix (``lstm``)."""
    return next(m for m in MODES.values() if word in (m.name, m.cls, m.cls + "Cell", m.cell))


def mode_of(cls: str, nonlinearity: str = "tanh") -> str:
    """The mode of a layer class (and the RNN's nonlinearity)."""
    return next(m.name for m in MODES.values()
                if m.cls == cls and m.nonlinearity in (None, nonlinearity))


def layer_options(mode: str, proj_size: int = 0) -> dict:
    """What a layer of class MODES[mode].cls takes beyond the common arguments to be of this
    mode: the RNN's nonlinearity, the LSTM's proj_size (torch.nn's and scratch's alike)."""
    if mode == "LSTM":
        return {"proj_size": proj_size}
    nonlinearity = MODES[mode].nonlinearity
    return {"nonlinearity": nonlinearity} if nonlinearity else {}


# -- the study functions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Function:
    """One study function. target: "module:qualname" (``scratch.sequence:direction_forward``,
    ``scratch.recurrent:RNNBase.backward``); callees: the targets of the study functions it
    calls; items: the rubric items that grade it."""

    target: str
    level: str  # step, cell, direction or layer
    modes: tuple[str, ...]
    callees: tuple[str, ...]
    items: tuple[str, ...]

    @property
    def name(self) -> str:
        """The name a student knows: ``rnn_step_forward``, ``RNNBase.forward``."""
        return self.target.partition(":")[2]

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def case_level(self) -> str:
        """The level of the cases it is run on: steps and cells on one cell's arrays
        ("cell"), the loop over time on a sequence's ("sequence"), the layer on a layer's."""
        return {"step": "cell", "cell": "cell", "direction": "sequence"}.get(self.level,
                                                                             self.level)

    def namespace(self, package=None):
        """Its module: in ``package`` (a ``scratch`` package object, maybe a copy loaded under
        another name), or the importable ``scratch``."""
        if package is None:
            return importlib.import_module(self.module)
        obj = package
        for part in self.module.split(".")[1:]:
            obj = getattr(obj, part)
        return obj

    def resolve(self, package=None):
        """The function itself (see ``namespace``)."""
        obj = self.namespace(package)
        for part in self.name.split("."):
            obj = getattr(obj, part)
        return obj

    def named_tuple(self, what: str, package=None) -> type:
        """The NamedTuple class ``what`` ("Cache", "Grads") of its level, in its module (see
        ``namespace``): RNNStepCache, LSTMCellGrads, DirectionCache."""
        cell = self.name.partition("_")[0]
        prefix = "" if cell == self.level else cell.upper()
        return getattr(self.namespace(package), prefix + self.level.capitalize() + what)

    def arguments(self, package=None) -> tuple[str, ...]:
        """Its argument names, in order, from its signature (``self`` left out)."""
        names = tuple(inspect.signature(self.resolve(package)).parameters)
        return names[1:] if "." in self.name else names

    def outputs(self, package=None) -> tuple[str, ...] | None:
        """The names of what it returns: from its ``return`` statement, each a name or a
        NamedTuple built there (named for what it is: ``cache``, ``grads``); None when it
        returns one NamedTuple (its ``_fields`` name the parts) or nothing."""
        source = textwrap.dedent(inspect.getsource(self.resolve(package)))
        returns = [node.value for node in ast.walk(ast.parse(source))
                   if isinstance(node, ast.Return) and node.value is not None]
        if not returns or not isinstance(returns[-1], ast.Tuple):
            return None
        return tuple(_output_name(e) for e in returns[-1].elts)


def _output_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        for suffix in ("Cache", "Grads"):
            if node.func.id.endswith(suffix):
                return suffix.lower()
    return ast.unparse(node)


OUTPUTS_FILE = "outputs.json"  # the handout's copy of output_names(), beside this file
VISIBLE_FILE = "visible_items.txt"  # the handout's list of the items the grader shows


@functools.cache
def output_names() -> dict[str, tuple[str, ...] | None]:
    """{name: Function.outputs()} of every study function, read from the reference's code;
    the handout carries it as OUTPUTS_FILE, since its copy of the code has no return
    statements to read."""
    shipped = Path(__file__).with_name(OUTPUTS_FILE)
    if shipped.is_file():
        return {k: None if v is None else tuple(v)
                for k, v in json.loads(shipped.read_text()).items()}
    return {f.name: f.outputs() for f in FUNCTIONS}


def _cell_functions(cell: str) -> tuple[Function, ...]:
    """A cell's step and cell functions, forward and backward, of the modes in CELLS[cell]."""
    module = f"scratch.functional.{cell}_cell"
    extra = ("proj_size",) if cell == "lstm" else ()
    return tuple(
        Function(f"{module}:{cell}_{level}_{way}", level, CELLS[cell],
                 () if level == "step" else (f"{module}:{cell}_step_{way}",),
                 (f"{cell}_{way}",) + extra)
        for way in ("forward", "backward") for level in ("step", "cell"))


def _step_targets(way: str) -> tuple[str, ...]:
    return tuple(f"scratch.functional.{c}_cell:{c}_step_{way}" for c in CELLS)


SEQUENCE = "scratch.sequence"
LAYER = "scratch.recurrent:RNNBase"
STACK_ITEMS = ("bidirectional", "layer", "multi_layer", "dropout")
FUNCTIONS: tuple[Function, ...] = (
    *(function for cell in CELLS for function in _cell_functions(cell)),
    Function(f"{SEQUENCE}:direction_forward", "direction", ALL_MODES, _step_targets("forward"),
             ("sequence_forward", "lengths", "bidirectional")),
    Function(f"{SEQUENCE}:direction_backward", "direction", ALL_MODES,
             _step_targets("backward"), ("bptt", "lengths", "bidirectional")),
    Function(f"{LAYER}.forward", "layer", ALL_MODES, (f"{SEQUENCE}:direction_forward",),
             STACK_ITEMS),
    Function(f"{LAYER}.backward", "layer", ALL_MODES,
             (f"{SEQUENCE}:direction_backward", f"{LAYER}._accumulate"), STACK_ITEMS),
    Function(f"{LAYER}._accumulate", "layer", ALL_MODES, (), ("layer",)),
)
BY_NAME = {f.name: f for f in FUNCTIONS}
BY_TARGET = {f.target: f for f in FUNCTIONS}


# -- the items ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemSpec:
    """One rubric item: what a student reads of it, and its cases as data (each a dict of
    the level and the options of that level's cases; the grader draws among them)."""

    id: str
    title: str
    weight: float
    about: str  # one sentence for the student: what has to be right
    cases: tuple[dict, ...]
    pinned: tuple[dict, ...] = ()  # whole-layer cases (parity.case.Case's fields) run first

    @property
    def grades(self) -> tuple[Function, ...]:
        """The study functions it grades, in the table's order."""
        return tuple(f for f in FUNCTIONS if self.id in f.items)

    @property
    def level(self) -> str:
        """The level of its function cases: "cell" (one step) or "sequence" (a direction)."""
        return "cell" if any(o["level"] == "cell" for o in self.cases) else "sequence"

    @property
    def twice(self) -> bool:
        """Whether its layers run forward and backward twice: it grades ``_accumulate``,
        which adds the gradients up."""
        return "RNNBase._accumulate" in {f.name for f in self.grades}

    def stand_ins(self, level: str) -> tuple[str, ...]:
        """On cases of ``level``: the targets the reference answers for, the study functions
        that what it grades there calls but it does not grade there."""
        graded = {f.target for f in self.grades if f.case_level == level}
        called = [t for f in FUNCTIONS if f.target in graded for t in f.callees]
        return tuple(dict.fromkeys(t for t in called if t not in graded))


SEQ = dict(T=(1, 5), B=(1, 3), I=(1, 3), H=(1, 4))
MASKED_MODES = ("RNN_TANH", "RNN_RELU", "LSTM")  # the loop's masking is the GRU's too


SEQUENCES = (dict(level="sequence", modes=ALL_MODES, **SEQ),  # and the LSTM's projection
             dict(level="sequence", modes=("LSTM",), proj=True, **SEQ))


def _cells(modes, **options) -> tuple[dict, ...]:
    return (dict(level="cell", modes=modes, **options),)


ITEMS: tuple[ItemSpec, ...] = (
    ItemSpec("rnn_forward", "RNN cell forward", 4,
             "h = act(x W_ih^T + b_ih + h_prev W_hh^T + b_hh) for tanh and relu, and the cache",
             _cells(RNN_MODES)),
    ItemSpec("rnn_backward", "RNN cell backward", 6,
             "every gradient of one RNN step, given the forward pass's cache",
             _cells(RNN_MODES)),
    ItemSpec("lstm_forward", "LSTM cell forward", 5,
             "the gates in torch's order i, f, g, o, the new cell and hidden state, and the "
             "cache", _cells(("LSTM",))),
    ItemSpec("lstm_backward", "LSTM cell backward", 8,
             "every gradient of one LSTM step, dc_prev included, given the forward's cache",
             _cells(("LSTM",))),
    ItemSpec("gru_forward", "GRU cell forward", 5,
             "torch's GRU: the reset gate multiplies (h_prev W_hn^T + b_hn), and the cache",
             _cells(("GRU",))),
    ItemSpec("gru_backward", "GRU cell backward", 8,
             "every gradient of one GRU step; db_ih and db_hh differ in the n block",
             _cells(("GRU",))),
    ItemSpec("proj_size", "LSTM with a projection (proj_size)", 6,
             "h = (o * tanh(c)) W_hr^T, dW_hr = dh^T (o * tanh(c)) and dh_full = dh W_hr in "
             "one LSTM step", _cells(("LSTM",), proj=True)),
    ItemSpec("sequence_forward", "Sequence forward", 8,
             "the loop over time: each step's state feeds the next, outputs, h_n (c_n), caches",
             SEQUENCES),
    ItemSpec("bptt", "Backpropagation through time", 12,
             "the backward loop: dL/dh (and dL/dc) carried from each step to the one before, "
             "dW_hh, db_hh (and dW_hr) summed over time", SEQUENCES),
    ItemSpec("lengths", "Variable lengths", 8,
             "past its length a sequence's state stays, its output is zero and it gets no "
             "gradient; the reverse direction starts at each sequence's own last step",
             (dict(level="sequence", modes=MASKED_MODES, T=(2, 5), B=(2, 3), I=(1, 3),
                   H=(1, 3), lengths=True, reverse=None),)),
    ItemSpec("bidirectional", "Bidirectional", 8,
             "the reverse direction runs from the last step to the first; a layer concatenates "
             "both directions' outputs and sums both directions' input gradients",
             (dict(level="sequence", modes=MASKED_MODES, reverse=True, **SEQ),
              dict(level="layer", layers=(1, 2), bidirectional=True, proj=False)),
             # two layers of two directions: h_n's rows are layer-major (l * D + d)
             (dict(mode="GRU", input_size=3, hidden_size=3, num_layers=2, bidirectional=True,
                   seq_len=3, batch=2, state_grad="h", seed=7),)),
    ItemSpec("layer", "One layer: forward, backward, parameter gradients", 8,
             "the input projection of all steps, the input gradient, and every parameter's "
             "gradient added into grads", (dict(level="layer", layers=(1, 1)),),
             # an LSTM with a projection: weight_hr has a gradient of its own
             (dict(mode="LSTM", input_size=3, hidden_size=4, proj_size=2, seq_len=3, batch=2,
                   state_grad="both", seed=7),)),
    ItemSpec("multi_layer", "Multi-layer", 8,
             "each layer's output is the next layer's input; the gradient flows back down the "
             "stack; h_n has one row per layer",
             (dict(level="layer", layers=(2, 3), proj=False),)),
    ItemSpec("dropout", "Dropout between layers", 6,
             "in training, each layer's output but the last is multiplied by its mask, and so "
             "is its gradient", (dict(level="layer", layers=(2, 3), dropout=True, proj=False),)),
)
ITEMS_BY_ID = {item.id: item for item in ITEMS}
assert {i for f in FUNCTIONS for i in f.items} == set(ITEMS_BY_ID)
assert abs(sum(item.weight for item in ITEMS) - 100) < 1e-9


def stand_in_targets() -> tuple[str, ...]:
    """Every study function some item runs as the reference: each callee in the table."""
    return tuple(dict.fromkeys(t for f in FUNCTIONS for t in f.callees))


def items_table(weights: dict[str, float] | None = None, stand_ins: bool = False) -> list[str]:
    """The Markdown table of the items (those of ``weights``, with those points; all, with
    their own, by default): what the handout's README shows, and, with the study functions
    the reference answers for (``stand_ins``), docs/grading.md."""
    weights = weights if weights is not None else {i.id: i.weight for i in ITEMS}
    head = "| item | points | grades | what has to be right |"
    lines = [head + (" runs as the reference |" if stand_ins else ""),
             "| --- | --- | --- | --- |" + (" --- |" if stand_ins else "")]
    for item in ITEMS:
        if item.id not in weights:
            continue
        grades = ", ".join(f"`{f.name}`" for f in item.grades)
        line = f"| `{item.id}`: {item.title} | {weights[item.id]:g} | {grades} | {item.about} |"
        if stand_ins:
            targets = dict.fromkeys(t for level in ("cell", "sequence", "layer")
                                    for t in item.stand_ins(level))
            line += " " + (", ".join(f"`{BY_TARGET[t].name}`" for t in targets) or "nothing")
            line += " |"
        lines.append(line)
    return lines


DOCS_BEGIN = "<!-- the items: written from parity/spec.py (python -m parity.spec) -->"
DOCS_END = "<!-- end of the items -->"


def with_items_table(text: str) -> str:
    """docs/grading.md's text with its items table written anew from this table."""
    return between_markers(text, DOCS_BEGIN, DOCS_END, items_table(stand_ins=True))


def between_markers(text: str, begin: str, end: str, lines: list[str]) -> str:
    """``text`` with what stands between the marker lines ``begin`` and ``end`` (each there
    once, in that order) replaced by ``lines``; the rest is left as it is."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"the text must hold the line {begin!r} once, then {end!r} once")
    head, rest = text.split(begin)
    return "\n".join([head + begin, *lines, end]) + rest.split(end)[1]


if __name__ == "__main__":  # rewrite docs/grading.md's table
    docs = Path(__file__).resolve().parents[1] / "docs" / "grading.md"
    docs.write_text(with_items_table(docs.read_text()))
