"""An item's calls on a case, and how an answer is judged and worded.

The grader and the student's check both build their calls here, from ``parity.spec``: which
study functions an item grades on a case, their arguments, the reference's answer and the
names of its parts. They differ only in the reference (the grader's is the real ``scratch``,
the check's is torch's equations) and in where the submission runs (a walled child process, or
the student's own process), which each hands to ``check_case``, their one loop over a case.
The answer is then judged here, by ``parity.diff``'s comparator, and a failure is worded here:
so both say the same thing about the same mistake.

A backward function is handed the reference forward's cache (built with the submission's own
cache classes, whose fields the skeleton fixes), so a wrong forward pass does not cost the
backward item too. NumPy and the standard library only: this module ships in the handout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from parity import spec
from parity.case import Case, CaseData, FunctionCase, make_data, make_function_data
from parity.diff import ANYTHING, TOL, Divergence, first_divergence


@dataclass
class Failure:
    """Why an item failed, in words: which function, what went wrong, on which case.

    cause: "wrong" (a value differs), "error" (the submission raised), "missing" (it raises
    NotImplementedError), "limit" (time, memory, or the process died), "import" (the package
    could not be imported), "grader" (the grading machine failed, not the submission).
    """

    function: str
    problem: str
    case: str
    cause: str = "wrong"
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


class Reference(Protocol):
    """What answers for the study functions: the grader's scratch, or the check's torch
    equations (central differences of the student's own forward, without torch)."""

    def function(self, name: str): ...  # a study function (spec name), with its signature

    def layer(self, case: Case): ...  # a layer of the case's configuration, weights loaded


# -- words ---------------------------------------------------------------------------------------
def error_site(error: dict) -> str:
    """Where an exception was raised, from its last frame [path, line, function, source line]:
    " (at PATH line N, in FUNCTION: `SOURCE`)", or "" without frames."""
    frames = error.get("frames") or []
    if not frames:
        return ""
    path, line, name, text = frames[-1]
    return f" (at {path} line {line}, in {name}" + (f": `{text}`)" if text else ")")


def describe_error(error: dict | None, function: str) -> tuple[str, str]:
    """(cause, words) for an exception the submission raised: {"type", "message", "frames"}."""
    if not error:
        return "error", f"{function} failed without saying why"
    where = error_site(error)
    if error.get("type") == "NotImplementedError":
        name = error["frames"][-1][2] if where else function
        return "missing", f"{name} is not written yet: it raises NotImplementedError{where}"
    return "error", f"{function} raised {error.get('type')}: {error.get('message') or ''}{where}"


def compare_named(expected, actual, names, tol: float = TOL) -> Divergence | None:
    if names is None:
        return first_divergence(expected, actual, "its result", tol)
    if not isinstance(actual, tuple) or len(actual) != len(names):
        what = f"{len(actual)} values" if isinstance(actual, (tuple, list)) else repr(
            type(actual).__name__)
        return Divergence("its result", f"should be the tuple ({', '.join(names)}), got {what}")
    for name, e, a in zip(names, expected, actual):
        found = first_divergence(e, a, name, tol)
        if found is not None:
            return found
    return None


def judge(call: Call, ok: bool, value, error: dict | None, case_words: str,
          notes=(), tol: float = TOL) -> Failure | None:
    """The failure of one answered call, or None."""
    if not ok:
        cause, words = describe_error(error, call.function)
        return Failure(call.function, words, case_words, cause, notes=list(notes))
    found = compare_named(call.expected, value, call.names, tol)
    if found is not None:
        return Failure(call.function, f"{call.function} returned {found}", case_words,
                       notes=list(notes))
    return None


def failure_text(failure: Failure, item: spec.ItemSpec) -> str:
    """What a student reads of a failed item: the grader's feedback and the check's."""
    label = "Smallest failing case" if failure.shrunk else "Failing case"
    if failure.cause in ("import", "missing", "grader"):
        label = "Case"
    text = f"{failure.problem}\n{label}: {failure.case}"
    if failure.cause != "grader":  # nothing for the student to fix
        text += f"\nWhat has to be right: {item.about}."
        text += f"\nGraded functions: {', '.join(f.name for f in item.grades)}."
    return text


# -- one cell, one direction ---------------------------------------------------------------------
def places(function: spec.Function) -> tuple[str, ...]:
    """Which of a case's values fills each argument of a study function, by position. The
    arguments' names are scratch's (or a student's) to choose; their places are not, so a
    renamed argument changes nothing here."""
    name, cell = function.name, function.name.partition("_")[0]
    if name.endswith("._accumulate"):
        return ("self", "layer", "direction", "X", "dx_proj", "rec")
    if name == "direction_forward":
        return ("mode", "x_proj", "h0", "c0", "weights", "valid", "reverse")
    if name == "direction_backward":
        return ("doutput", "dh_n", "dc_n", "cache", "weights")
    lstm = cell == "lstm"
    if name.endswith("backward"):
        upstream = ("dh", "dc_next") if lstm else ("dh",)
        weights = (("W_hh", "W_hr") if lstm else ("W_hh",)) if function.level == "step" else ()
        return (*upstream, "cache", *weights)
    last = {"rnn": ("nonlinearity",), "lstm": ("W_hr",), "gru": ()}[cell]
    inputs = ("x_proj",) if function.level == "step" else ("x",)
    state = ("h_prev", "c_prev") if lstm else ("h_prev",)
    weights = ("W_hh", "b_hh") if function.level == "step" else ("W_ih", "W_hh", "b_ih", "b_hh")
    return (*inputs, *state, *weights, *last)


def arguments(name: str, values: dict) -> tuple:
    """A study function's arguments, in order, from a case's values."""
    return tuple(values[place] for place in places(spec.BY_NAME[name]))


def cell_values(mode: str, d) -> dict:
    """The values of a case's first step (d: its ``make_function_data``), by place."""
    return dict(vars(d), mode=mode, nonlinearity=spec.MODES[mode].nonlinearity,
                x=d.x[0], x_proj=d.x_proj[0], h_prev=d.h0, c_prev=d.c0, dh=d.doutput[0],
                dc_next=d.dc_n)


def calls_of(item: spec.ItemSpec, case: FunctionCase, way: str,
             reference: Reference) -> list[Call]:
    """The item's calls of one way on a case of one cell (its first step) or one direction:
    each function it grades there, with its arguments taken from the case's arrays by place."""
    level = item.level
    d = make_function_data(case)
    if level == "cell":
        values = cell_values(case.mode, d)
    else:
        weights = spec.BY_NAME["direction_forward"].namespace().DirectionWeights
        values = dict(vars(d), mode=case.mode, reverse=case.reverse, x_proj=d.x_proj,
                      weights=weights(d.W_hh, d.b_hh, d.W_hr))
    graded = [f.name for f in item.grades if f.case_level == level and f.name.endswith(way)]
    calls = []
    for name in graded:
        if way == "backward":
            forward = name.replace("backward", "forward")
            values["cache"] = reference.function(forward)(*arguments(forward, values))[-1]
        args = arguments(name, values)
        expected = reference.function(name)(*args)
        if name == "direction_forward" and d.valid is not None:
            # what a step's cache holds for a sequence past its length is the loop's own
            # business (its gradient is masked to zero): those caches are not compared
            expected = (*expected[:-1], expected[-1]._replace(steps=ANYTHING))
        calls.append(Call(name, spec.BY_NAME[name].target, args, {}, expected,
                          spec.output_names()[name]))
    return calls


# -- a layer -------------------------------------------------------------------------------------
def layer_arguments(case: Case):
    """(constructor args, kwargs) of the layer a Case describes."""
    kwargs = dict(num_layers=case.num_layers, bias=case.bias, batch_first=case.batch_first,
                  dropout=case.dropout, bidirectional=case.bidirectional,
                  **spec.layer_options(case.mode, case.proj_size))
    return (case.input_size, case.hidden_size), kwargs


def layer_inputs(case: Case, data: CaseData) -> tuple:
    """(hx, grad_state, forward_kwargs) of a layer Case with its arrays: the initial state
    given to forward() (None, h0, or (h0, c0) for the LSTM), the final state's upstream
    gradient given to backward() beside grad_output (alike, with None where a state has
    none), and forward()'s keyword arguments, only those the case uses (``lengths``,
    ``dropout_masks``): a layer need not know the others."""
    lstm = case.mode == "LSTM"
    hx = None if data.h0 is None else ((data.h0, data.c0) if lstm else data.h0)
    grad_state = data.grad_h_n
    if lstm and case.state_grad != "none":
        grad_state = (data.grad_h_n, data.grad_c_n)
    forward_kwargs: dict = {}
    if case.lengths is not None:
        forward_kwargs["lengths"] = list(case.lengths)
    if data.masks is not None:
        forward_kwargs["dropout_masks"] = data.masks
    return hx, grad_state, forward_kwargs


def layer_request(case: Case, reference: Reference, twice: bool = False):
    """(what to run on the submission's layer, the reference's answer to it). twice: run
    forward and backward a second time without zero_grad; every gradient must then be
    doubled."""
    data = make_data(case)
    args, kwargs = layer_arguments(case)
    hx, grad_state, forward_kwargs = layer_inputs(case, data)
    request = {
        "cls": spec.MODES[case.mode].cls, "args": args, "kwargs": kwargs,
        "state": data.params, "train": case.training,
        "forward": {"args": (data.input, hx), "kwargs": forward_kwargs},
        "backward": {"args": (data.grad_output, grad_state), "kwargs": {}},
        "twice": twice,
    }
    module = reference.layer(case)
    forward = module.forward(data.input, hx, **forward_kwargs)
    backward = module.backward(data.grad_output, grad_state)
    grads = {name: module.grads[name].copy() for name in data.params}
    expected = {"forward": forward, "backward": backward, "grads": grads}
    if twice:
        expected["grads_twice"] = {name: 2.0 * grad for name, grad in grads.items()}
    return request, expected


def _named_outputs(mode: str, stage: str, value) -> tuple[dict, str | None]:
    """{name: value} of a forward's (output, h_n) or a backward's (grad_input, grad_hx)."""
    first, second, cell = (("output", "h_n", "c_n") if stage == "forward" else
                           ("grad_input", "grad_h0", "grad_c0"))
    if not isinstance(value, tuple) or len(value) != 2:
        return {}, f"should return a pair ({first}, {second}), got {type(value).__name__}"
    if mode != "LSTM" or value[1] is None:
        return {first: value[0], second: value[1]}, None
    if not isinstance(value[1], tuple) or len(value[1]) != 2:
        return {}, f"should return {second} as a pair for LSTM"
    return {first: value[0], second: value[1][0], cell: value[1][1]}, None


def judge_layer(case: Case, request: dict, expected: dict, reached, error: dict | None,
                notes=()) -> Failure | None:
    """The failure of a layer's answer (what it reached before any error), or None."""
    words, cls, notes = case.describe(), request["cls"], list(notes)
    reached = reached if isinstance(reached, dict) else {}
    reached = {k: v for k, v in reached.items()
               if k not in ("grads", "grads_twice") or isinstance(v, dict)}
    for stage in ("forward", "backward"):
        function = f"{cls}.{stage}"
        if stage not in reached:
            cause, text = describe_error(error, function)
            return Failure(function, text, words, cause, notes=notes)
        want, _ = _named_outputs(case.mode, stage, expected[stage])
        got, problem = _named_outputs(case.mode, stage, reached[stage])
        if problem is not None:
            return Failure(function, f"{function} {problem}", words, notes=notes)
        for name, value in want.items():
            found = first_divergence(value, got.get(name), name)
            if found is not None:
                return Failure(function, f"{function} returned {found}", words, notes=notes)
    for key, what, prefix in (
            ("grads", f"{cls}.grads", f"after {cls}.backward, "),
            ("grads_twice", f"a second {cls}.backward", "after a second forward and backward "
             "without zero_grad (gradients must add up), ")):
        if key not in expected:
            continue
        if key not in reached:
            cause, text = describe_error(error, what)
            return Failure(f"{cls}.backward", text, words, cause, notes=notes)
        for name, value in expected[key].items():
            found = first_divergence(value, reached[key].get(name), f"grads[{name!r}]")
            if found is not None:
                return Failure(f"{cls}.backward", prefix + str(found), words, notes=notes)
    return None


# -- one case of an item -------------------------------------------------------------------------
RunLayer = Callable[[dict, tuple[str, ...]], tuple[object, dict | None, list]]
RunCalls = Callable[[list[Call], str, tuple[str, ...]], Failure | None]


def check_case(item: spec.ItemSpec, case: Case | FunctionCase, reference: Reference,
               run_layer: RunLayer, run_calls: RunCalls) -> Failure | None:
    """The first failure of an item on one case, or None: the grader's loop and the check's.

    Where the submission runs is theirs to say. A layer case's request goes to
    ``run_layer(request, stand_ins)``, which answers (what the layer reached, the error it
    raised or None, notes). A function case's calls go forward, then backward, to
    ``run_calls(calls, case_words, stand_ins)``, which answers the first failure; a way with
    no calls sends nothing, and the backward ones are not built after a forward failure.
    stand_ins: the targets the reference answers for meanwhile (``ItemSpec.stand_ins``)."""
    if isinstance(case, Case):
        request, expected = layer_request(case, reference, item.twice)
        reached, error, notes = run_layer(request, item.stand_ins("layer"))
        return judge_layer(case, request, expected, reached, error, notes)
    for way in ("forward", "backward"):
        calls = calls_of(item, case, way, reference)
        if calls:
            failure = run_calls(calls, case.describe(), item.stand_ins(item.level))
            if failure is not None:
                return failure
    return None
