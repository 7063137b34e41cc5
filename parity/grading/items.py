"""The rubric's items: what each one grades, on which cases, against which reference.

Each item grades a few functions of the submission and runs everything else those functions
call as the reference (``oracles``), so one wrong function costs only the items that grade it:

    level      items                                graded                 run as reference
    cell       rnn/lstm/gru_forward, *_backward,    the cell's step and    (nothing)
               proj_size                            cell functions
    sequence   sequence_forward, bptt, lengths,     direction_forward,     the step functions
               bidirectional (reverse)              direction_backward
    layer      layer, multi_layer, dropout,         RNNBase.forward and    the sequence loop,
               bidirectional (a layer)              .backward, _accumulate and _accumulate
                                                    (``layer`` only)       but in ``layer``

A backward item is handed the reference's caches (built with the submission's own cache
classes, whose fields the skeleton fixes), so a wrong forward pass does not cost the backward
item too. Every graded function is pure: arrays in, new arrays out, so an item compares what
it returns and nothing else. The reference is the real ``scratch`` package, imported here in
the grader; its answers are compared with the submission's by ``diff.first_divergence``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

import scratch
from parity.case import Case, make_data
from parity.grading import oracles, protocol
from parity.grading.cases import (
    MODES,
    FunctionCase,
    function_cases,
    layer_cases,
    make_function_data,
)
from parity.grading.diff import ANYTHING, Divergence, first_divergence
from parity.grading.sandbox import Child, ChildFailure
from scratch import functional as F
from scratch import sequence as S

FUNCTIONAL = "scratch.functional"


@dataclass
class Failure:
    """Why an item failed, in words: which function, what went wrong, on which case.

    kind: "wrong" (a value differs), "error" (the submission raised), "missing" (it raises
    NotImplementedError), "limit" (time, memory, or the process died), "import" (the package
    could not be imported), "grader" (the grading machine failed, not the submission).
    """

    function: str
    problem: str
    case: str
    kind: str = "wrong"
    shrunk: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Call:
    """One call into the submission and the reference's answer to it."""

    function: str  # the name a student knows, e.g. "rnn_step_forward"
    target: str  # "module:qualname" in the submission
    args: tuple
    kwargs: dict
    expected: object
    names: tuple | None  # names of the returned tuple's items, or None for one value


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    grades: tuple[str, ...]  # the functions this item grades, as a student reads them
    weight: float
    about: str  # one sentence for the student: what has to be right
    strategy: Callable[[], st.SearchStrategy]
    check: Callable[[Child, object, float], Failure | None]
    pinned: tuple = ()  # cases every grading runs first, before the drawn ones


# -- running calls -------------------------------------------------------------------------------
def describe_error(error: dict | None, function: str) -> tuple[str, str]:
    """(kind, words) for an exception the submission raised."""
    if not error:
        return "error", f"{function} failed without saying why"
    kind = "missing" if error.get("type") == "NotImplementedError" else "error"
    frames = error.get("frames") or []
    where = ""
    if frames:
        path, line, name, text = frames[-1]
        where = f" (at {path} line {line}, in {name}"
        where += f": `{text}`)" if text else ")"
        if kind == "missing":
            return kind, f"{name} is not written yet: it raises NotImplementedError{where}"
    if kind == "missing":
        return kind, f"{function} is not written yet: it raises NotImplementedError"
    message = error.get("message") or ""
    return kind, f"{function} raised {error.get('type')}: {message}{where}"


def run_calls(child: Child, calls: list[Call], seconds: float, case_words: str,
              oracle_names=()) -> Failure | None:
    """Run the calls in one request; the first that raises or differs is the failure."""
    specs = [{"target": c.target, "args": c.args, "kwargs": c.kwargs} for c in calls]
    answer = child.request("calls", specs, seconds, oracles=oracle_names)
    if not answer.ok:
        kind, words = describe_error(answer.error, calls[0].function)
        return Failure(calls[0].function, words, case_words, kind, notes=answer.notes)
    results = answer.value
    if not isinstance(results, list) or len(results) != len(calls) or not all(
            isinstance(r, (list, tuple)) and len(r) == 3 and isinstance(r[0], bool)
            for r in results):
        child.close_process()  # its next answers could not be trusted to match requests
        raise ChildFailure("the submission's process did not answer every call it was asked "
                           f"to make ({len(calls)}): its answer was malformed")
    for call, (ok, value, error) in zip(calls, results, strict=True):
        error = protocol.clean_error(error)
        if not ok:
            kind, words = describe_error(error, call.function)
            return Failure(call.function, words, case_words, kind, notes=answer.notes)
        found = compare_named(call.expected, value, call.names, call.function)
        if found is not None:
            return Failure(call.function, f"{call.function} returned {found}", case_words,
                           notes=answer.notes)
    return None


def compare_named(expected, actual, names, function: str) -> Divergence | None:
    if names is None:
        return first_divergence(expected, actual, "its result")
    if not isinstance(actual, tuple) or len(actual) != len(names):
        what = f"{len(actual)} values" if isinstance(actual, (tuple, list)) else repr(
            type(actual).__name__)
        return Divergence("its result", f"should be the tuple ({', '.join(names)}), got {what}")
    for name, e, a in zip(names, expected, actual):
        found = first_divergence(e, a, name)
        if found is not None:
            return found
    return None


# -- the cell level ----------------------------------------------------------------------------
def _cell_inputs(case: FunctionCase):
    d = make_function_data(case)
    return d, d.x[0], d.h0, d.x_proj[0], d.doutput[0]


def _nonlinearity(mode: str) -> str:
    return "tanh" if mode == "RNN_TANH" else "relu"


def cell_call(name: str, args: tuple, names: tuple | None) -> Call:
    kind = name.partition("_")[0]
    return Call(name, f"{FUNCTIONAL}.{kind}_cell:{name}", args, {}, getattr(F, name)(*args),
                names)


def cell_forward_calls(case: FunctionCase) -> list[Call]:
    d, x, h, x_proj, _ = _cell_inputs(case)
    if case.mode in ("RNN_TANH", "RNN_RELU"):
        nl = _nonlinearity(case.mode)
        return [cell_call("rnn_step_forward", (x_proj, h, d.W_hh, d.b_hh, nl),
                            ("h", "cache")),
                cell_call("rnn_cell_forward", (x, h, d.W_ih, d.W_hh, d.b_ih, d.b_hh, nl),
                          ("h", "cache"))]
    if case.mode == "LSTM":
        return [cell_call("lstm_step_forward",
                            (x_proj, h, d.c0, d.W_hh, d.b_hh, d.W_hr), ("h", "c", "cache")),
                cell_call("lstm_cell_forward",
                          (x, h, d.c0, d.W_ih, d.W_hh, d.b_ih, d.b_hh, d.W_hr),
                          ("h", "c", "cache"))]
    return [cell_call("gru_step_forward", (x_proj, h, d.W_hh, d.b_hh), ("h", "cache")),
            cell_call("gru_cell_forward", (x, h, d.W_ih, d.W_hh, d.b_ih, d.b_hh),
                      ("h", "cache"))]


def cell_backward_calls(case: FunctionCase) -> list[Call]:
    """The backward functions, each handed the reference forward's cache."""
    d, x, h, x_proj, dh = _cell_inputs(case)
    if case.mode in ("RNN_TANH", "RNN_RELU"):
        nl = _nonlinearity(case.mode)
        _, step_cache = F.rnn_step_forward(x_proj, h, d.W_hh, d.b_hh, nl)
        _, cell_cache = F.rnn_cell_forward(x, h, d.W_ih, d.W_hh, d.b_ih, d.b_hh, nl)
        return [cell_call("rnn_step_backward", (dh, step_cache, d.W_hh),
                            ("dpre", "dh_prev")),
                cell_call("rnn_cell_backward", (dh, cell_cache), None)]
    if case.mode == "LSTM":
        dc = d.dc_n
        _, _, step_cache = F.lstm_step_forward(x_proj, h, d.c0, d.W_hh, d.b_hh, d.W_hr)
        _, _, cell_cache = F.lstm_cell_forward(x, h, d.c0, d.W_ih, d.W_hh, d.b_ih, d.b_hh,
                                               d.W_hr)
        return [cell_call("lstm_step_backward",
                            (dh, dc, step_cache, d.W_hh, d.W_hr),
                            ("dgates", "dh_prev", "dc_prev")),
                cell_call("lstm_cell_backward", (dh, dc, cell_cache), None)]
    _, step_cache = F.gru_step_forward(x_proj, h, d.W_hh, d.b_hh)
    _, cell_cache = F.gru_cell_forward(x, h, d.W_ih, d.W_hh, d.b_ih, d.b_hh)
    return [cell_call("gru_step_backward", (dh, step_cache, d.W_hh),
                        ("dgi", "dgh", "dh_prev")),
            cell_call("gru_cell_backward", (dh, cell_cache), None)]


def check_cell_forward(child: Child, case: FunctionCase, seconds: float) -> Failure | None:
    return run_calls(child, cell_forward_calls(case), seconds, case.describe())


def check_cell_backward(child: Child, case: FunctionCase, seconds: float) -> Failure | None:
    return run_calls(child, cell_backward_calls(case), seconds, case.describe())


def check_cell_both(child: Child, case: FunctionCase, seconds: float) -> Failure | None:
    return (check_cell_forward(child, case, seconds)
            or check_cell_backward(child, case, seconds))


# -- the sequence level ------------------------------------------------------------------------
def _direction_args(case: FunctionCase):
    d = make_function_data(case)
    weights = S.DirectionWeights(d.W_hh, d.b_hh, d.W_hr)
    return d, weights


def direction_forward_call(case: FunctionCase) -> Call:
    d, weights = _direction_args(case)
    args = (case.mode, d.x_proj, d.h0, d.c0, weights)
    kwargs = {"valid": d.valid, "reverse": case.reverse}
    output, h_n, c_n, cache = S.direction_forward(*args, **kwargs)
    if d.valid is not None:
        # what a step's cache holds for a sequence past its length is the loop's own
        # business (its gradient is masked to zero): those caches are not compared
        cache = cache._replace(steps=ANYTHING)
    return Call("direction_forward", "scratch.sequence:direction_forward", args, kwargs,
                (output, h_n, c_n, cache), ("output", "h_n", "c_n", "cache"))


def direction_backward_call(case: FunctionCase) -> Call:
    """direction_backward handed the reference forward's cache."""
    d, weights = _direction_args(case)
    *_, cache = S.direction_forward(case.mode, d.x_proj, d.h0, d.c0, weights, valid=d.valid,
                                    reverse=case.reverse)
    args = (d.doutput, d.dh_n, d.dc_n, cache, weights)
    return Call("direction_backward", "scratch.sequence:direction_backward", args, {},
                S.direction_backward(*args), ("dx_proj", "dh0", "dc0", "grads"))


def check_sequence_forward(child: Child, case: FunctionCase, seconds: float):
    return run_calls(child, [direction_forward_call(case)], seconds, case.describe(),
                     oracles.STEP_FUNCTIONS)


def check_sequence_backward(child: Child, case: FunctionCase, seconds: float):
    return run_calls(child, [direction_backward_call(case)], seconds, case.describe(),
                     oracles.STEP_FUNCTIONS)


def check_sequence_both(child: Child, case: FunctionCase, seconds: float):
    return (check_sequence_forward(child, case, seconds)
            or check_sequence_backward(child, case, seconds))


# -- the layer level ---------------------------------------------------------------------------
CLASS_OF = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def layer_spec(case: Case):
    """(constructor args, kwargs) of the layer a parity Case describes."""
    kwargs = dict(num_layers=case.num_layers, bias=case.bias, batch_first=case.batch_first,
                  dropout=case.dropout, bidirectional=case.bidirectional)
    if case.kind == "LSTM":
        kwargs["proj_size"] = case.proj_size
    if case.kind in ("RNN_TANH", "RNN_RELU"):
        kwargs["nonlinearity"] = _nonlinearity(case.kind)
    return (case.input_size, case.hidden_size), kwargs


def layer_request(case: Case, twice: bool = False):
    """(request for the child, the reference's answer to it). twice: run forward and
    backward a second time without zero_grad; every gradient must then be doubled."""
    data = make_data(case)
    args, kwargs = layer_spec(case)
    hx = None
    if case.hx:
        hx = (data.h0, data.c0) if case.kind == "LSTM" else data.h0
    grad_state = data.grad_h_n
    if case.kind == "LSTM":
        grad_state = None if data.grad_h_n is None and data.grad_c_n is None else (
            data.grad_h_n, data.grad_c_n)
    forward_kwargs = {"lengths": None if case.lengths is None else list(case.lengths)}
    if data.masks is not None:
        forward_kwargs["dropout_masks"] = data.masks
    spec = {
        "cls": CLASS_OF[case.kind], "args": args, "kwargs": kwargs, "state": data.params,
        "train": case.training,
        "forward": {"args": (data.input, hx), "kwargs": forward_kwargs},
        "backward": {"args": (data.grad_output, grad_state), "kwargs": {}},
        "twice": twice,
    }
    module = getattr(scratch, CLASS_OF[case.kind])(*args, **kwargs, seed=0)
    module.load_state_dict(data.params)
    module.train(case.training)
    forward = module.forward(data.input, hx, **forward_kwargs)
    backward = module.backward(data.grad_output, grad_state)
    grads = {name: module.grads[name].copy() for name in data.params}
    expected = {"forward": forward, "backward": backward, "grads": grads}
    if twice:
        expected["grads_twice"] = {name: 2.0 * grad for name, grad in grads.items()}
    return spec, expected


def _named_outputs(kind: str, stage: str, value) -> tuple[dict, str | None]:
    """{name: value} of a forward's (output, h_n) or a backward's (grad_input, grad_hx)."""
    first, second = ("output", "h_n") if stage == "forward" else ("grad_input", "grad_h0")
    if not isinstance(value, tuple) or len(value) != 2:
        return {}, f"should return a pair ({first}, {second}), got {type(value).__name__}"
    named = {first: value[0]}
    if kind == "LSTM" and value[1] is not None:
        pair = value[1]
        if not isinstance(pair, tuple) or len(pair) != 2:
            return {}, f"should return {second} as a pair for LSTM"
        names = ("h_n", "c_n") if stage == "forward" else ("grad_h0", "grad_c0")
        named.update(zip(names, pair))
    else:
        named[second] = value[1]
    return named, None


def check_layer(child: Child, case: Case, seconds: float, oracle_names=(),
                twice: bool = False) -> Failure | None:
    spec, expected = layer_request(case, twice)
    answer = child.request("module", spec, seconds, oracles=oracle_names)
    words = case.describe()
    cls = spec["cls"]
    reached = answer.value if isinstance(answer.value, dict) else {}
    for key in ("grads", "grads_twice"):
        if key in reached and not isinstance(reached[key], dict):
            reached = {k: v for k, v in reached.items() if k != key}
    for stage in ("forward", "backward"):
        function = f"{cls}.{stage}"
        if stage not in reached:
            kind, text = describe_error(answer.error, function)
            return Failure(function, text, words, kind, notes=answer.notes)
        want, _ = _named_outputs(case.kind, stage, expected[stage])
        got, problem = _named_outputs(case.kind, stage, reached[stage])
        if problem is not None:
            return Failure(function, f"{function} {problem}", words, notes=answer.notes)
        for name, value in want.items():
            found = first_divergence(value, got.get(name), name)
            if found is not None:
                return Failure(function, f"{function} returned {found}", words,
                               notes=answer.notes)
    if "grads" not in reached:
        kind, text = describe_error(answer.error, f"{cls}.grads")
        return Failure(f"{cls}.backward", text, words, kind, notes=answer.notes)
    for name, value in expected["grads"].items():
        found = first_divergence(value, reached["grads"].get(name), f"grads[{name!r}]")
        if found is not None:
            return Failure(f"{cls}.backward", f"after {cls}.backward, {found}", words,
                           notes=answer.notes)
    if twice:
        if "grads_twice" not in reached:
            kind, text = describe_error(answer.error, f"a second {cls}.backward")
            return Failure(f"{cls}.backward", text, words, kind, notes=answer.notes)
        for name, value in expected["grads_twice"].items():
            found = first_divergence(value, reached["grads_twice"].get(name),
                                     f"grads[{name!r}]")
            if found is not None:
                return Failure(f"{cls}.backward", f"after a second forward and backward "
                               f"without zero_grad (gradients must add up), {found}", words,
                               notes=answer.notes)
    return None


LAYER_ORACLES = oracles.DIRECTION_FUNCTIONS
STACK_ORACLES = oracles.DIRECTION_FUNCTIONS + (oracles.ACCUMULATE,)


def check_one_layer(child: Child, case: Case, seconds: float):
    return check_layer(child, case, seconds, LAYER_ORACLES, twice=True)


def check_stacked(child: Child, case: Case, seconds: float):
    return check_layer(child, case, seconds, STACK_ORACLES)


def check_bidirectional(child: Child, case, seconds: float):
    if isinstance(case, FunctionCase):
        return check_sequence_both(child, case, seconds)
    return check_stacked(child, case, seconds)




# -- the catalogue -----------------------------------------------------------------------------
RNN_MODES = ("RNN_TANH", "RNN_RELU")
# The loop's masking and reversing are the same for every cell kind but for the LSTM's c;
# the GRU's own bookkeeping (dgh apart from dx_proj) is the business of ``bptt``.
MASKED_MODES = ("RNN_TANH", "RNN_RELU", "LSTM")
SEQ = dict(T=(1, 5), B=(1, 3), I=(1, 3), H=(1, 4))


def _sequences(**kwargs):
    """Every mode, the LSTM with and without a projection."""
    return lambda: st.one_of(function_cases(MODES, **SEQ, **kwargs),
                             function_cases(("LSTM",), proj=True, **SEQ, **kwargs))


def _cells(modes):
    return lambda: function_cases(modes)


ITEMS: tuple[Item, ...] = (
    Item("rnn_forward", "RNN cell forward", ("rnn_step_forward", "rnn_cell_forward"), 4,
         "h = act(x W_ih^T + b_ih + h_prev W_hh^T + b_hh) for tanh and relu, and the cache",
         _cells(RNN_MODES), check_cell_forward),
    Item("rnn_backward", "RNN cell backward", ("rnn_step_backward", "rnn_cell_backward"), 6,
         "every gradient of one RNN step, given the forward pass's cache",
         _cells(RNN_MODES), check_cell_backward),
    Item("lstm_forward", "LSTM cell forward", ("lstm_step_forward", "lstm_cell_forward"), 5,
         "the gates in torch's order i, f, g, o, the new cell and hidden state, and the cache",
         _cells(("LSTM",)), check_cell_forward),
    Item("lstm_backward", "LSTM cell backward", ("lstm_step_backward", "lstm_cell_backward"),
         8, "every gradient of one LSTM step, dc_prev included, given the forward's cache",
         _cells(("LSTM",)), check_cell_backward),
    Item("gru_forward", "GRU cell forward", ("gru_step_forward", "gru_cell_forward"), 5,
         "torch's GRU: the reset gate multiplies (h_prev W_hn^T + b_hn), and the cache",
         _cells(("GRU",)), check_cell_forward),
    Item("gru_backward", "GRU cell backward", ("gru_step_backward", "gru_cell_backward"), 8,
         "every gradient of one GRU step; db_ih and db_hh differ in the n block",
         _cells(("GRU",)), check_cell_backward),
    Item("proj_size", "LSTM with a projection (proj_size)",
         ("lstm_step_forward", "lstm_step_backward", "lstm_cell_forward",
          "lstm_cell_backward"), 6,
         "h = (o * tanh(c)) W_hr^T, dW_hr = dh^T (o * tanh(c)) and dh_full = dh W_hr in one "
         "LSTM step",
         lambda: function_cases(("LSTM",), proj=True), check_cell_both),
    Item("sequence_forward", "Sequence forward", ("direction_forward",), 8,
         "the loop over time: each step's state feeds the next, outputs, h_n (c_n), caches",
         _sequences(), check_sequence_forward),
    Item("bptt", "Backpropagation through time", ("direction_backward",), 12,
         "the backward loop: dL/dh (and dL/dc) carried from each step to the one before, "
         "dW_hh, db_hh (and dW_hr) summed over time",
         _sequences(), check_sequence_backward),
    Item("lengths", "Variable lengths", ("direction_forward", "direction_backward"), 8,
         "past its length a sequence's state stays, its output is zero and it gets no "
         "gradient; the reverse direction starts at each sequence's own last step",
         lambda: function_cases(MASKED_MODES, T=(2, 5), B=(2, 3), I=(1, 3), H=(1, 3),
                                lengths=True, reverse=None),
         check_sequence_both),
    Item("bidirectional", "Bidirectional", ("direction_forward", "direction_backward",
                                            "RNNBase.forward", "RNNBase.backward"), 8,
         "the reverse direction runs from the last step to the first; a layer concatenates "
         "both directions' outputs and sums both directions' input gradients",
         lambda: st.one_of(function_cases(MASKED_MODES, reverse=True, **SEQ),
                           layer_cases(layers=(1, 2), bidirectional=True, proj=False)),
         check_bidirectional,
         # two layers of two directions: h_n's rows are layer-major (l * D + d)
         pinned=(Case("GRU", 3, 3, num_layers=2, bidirectional=True, seq_len=3, batch=2,
                      state_grad="h", seed=7),)),
    Item("layer", "One layer: forward, backward, parameter gradients",
         ("RNNBase.forward", "RNNBase.backward", "RNNBase._accumulate"), 8,
         "the input projection of all steps, the input gradient, and every parameter's "
         "gradient added into grads",
         lambda: layer_cases(layers=(1, 1)), check_one_layer,
         # an LSTM with a projection: weight_hr has a gradient of its own
         pinned=(Case("LSTM", 3, 4, proj_size=2, seq_len=3, batch=2, state_grad="both",
                      seed=7),)),
    Item("multi_layer", "Multi-layer", ("RNNBase.forward", "RNNBase.backward"), 8,
         "each layer's output is the next layer's input; the gradient flows back down the "
         "stack; h_n has one row per layer",
         lambda: layer_cases(layers=(2, 3), proj=False), check_stacked),
    Item("dropout", "Dropout between layers", ("RNNBase.forward", "RNNBase.backward"), 6,
         "in training, each layer's output but the last is multiplied by its mask, and so is "
         "its gradient",
         lambda: layer_cases(layers=(2, 3), dropout=True, proj=False), check_stacked),
)

ITEMS_BY_ID = {item.id: item for item in ITEMS}
assert len(ITEMS_BY_ID) == len(ITEMS)
assert np.isclose(sum(item.weight for item in ITEMS), 100)
