"""The study path's promises, beyond its numbers: the backward pass never writes into an array
of the forward pass, no array is shared between calls, and every equation line that the study
guide can point at carries a unique anchor tag ``{#name}``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import MODES, case_id, layer_case, make_data, make_module, option_cases

import scratch
from scratch.sequence import DirectionWeights, direction_backward, direction_forward

SCRATCH = Path(scratch.__file__).resolve().parent
G = scratch.GATES


def arrays_in(value, seen=None) -> list[np.ndarray]:
    """Every array reachable from value: through tuples, lists, dicts and NamedTuples."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in arrays_in(item, seen)]
    return []


def snapshot(value) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(a, a.copy()) for a in arrays_in(value)]


def assert_unchanged(pairs, what: str) -> None:
    assert pairs, f"{what}: nothing to compare"
    for k, (array, before) in enumerate(pairs):
        assert np.array_equal(array, before, equal_nan=True), f"{what}: array {k} was written"


def direction_arrays(mode, T=4, B=3, I=2, H=3, P=0, lengths=None, seed=0):
    rng = np.random.default_rng(seed)
    H_out = P or H
    W_ih = rng.uniform(-0.5, 0.5, (G[mode] * H, I))
    weights = DirectionWeights(rng.uniform(-0.5, 0.5, (G[mode] * H, H_out)),
                               rng.uniform(-0.5, 0.5, G[mode] * H),
                               rng.uniform(-0.5, 0.5, (P, H)) if P else None)
    x_proj = rng.standard_normal((T, B, I)) @ W_ih.T
    h0 = rng.standard_normal((B, H_out))
    c0 = rng.standard_normal((B, H)) if mode == "LSTM" else None
    valid = None
    if lengths is not None:
        valid = (np.arange(T)[:, None] < np.asarray(lengths)[None, :])[:, :, None]
    doutput, dh_n = rng.standard_normal((T, B, H_out)), rng.standard_normal((B, H_out))
    dc_n = rng.standard_normal((B, H)) if mode == "LSTM" else None
    return x_proj, h0, c0, weights, valid, doutput, dh_n, dc_n


DIRECTIONS = [(mode, reverse, lengths, P) for mode in MODES for reverse in (False, True)
              for lengths in (None, (4, 1, 2)) for P in ((0, 2) if mode == "LSTM" else (0,))]


@pytest.mark.parametrize("mode, reverse, lengths, P", DIRECTIONS)
def test_direction_backward_never_writes_into_the_forward_pass(mode, reverse, lengths, P):
    x_proj, h0, c0, weights, valid, doutput, dh_n, dc_n = direction_arrays(
        mode, P=P, lengths=lengths)
    output, h_n, c_n, cache = direction_forward(mode, x_proj, h0, c0, weights, valid, reverse)
    forward = snapshot([x_proj, h0, c0, weights, valid, output, h_n, c_n, cache])
    upstream = snapshot([doutput, dh_n, dc_n])
    first = direction_backward(doutput, dh_n, dc_n, cache, weights)
    assert_unchanged(forward, "the forward's arrays after direction_backward")
    assert_unchanged(upstream, "the upstream gradients after direction_backward")
    # the cache is intact: a second backward from it gives the very same gradients
    second = direction_backward(doutput, dh_n, dc_n, cache, weights)
    for a, b in zip(arrays_in(first), arrays_in(second)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", MODES)
def test_direction_forward_shares_no_array_between_calls(mode):
    x_proj, h0, c0, weights, valid, *_ = direction_arrays(mode, lengths=(4, 1, 2))
    first = direction_forward(mode, x_proj, h0, c0, weights, valid)
    kept = snapshot(first)
    second = direction_forward(mode, 2.0 * x_proj, -h0, c0, weights, valid)
    assert_unchanged(kept, "the first call's results after a second call")
    inputs = arrays_in([x_proj, h0, c0, weights, valid])
    results = arrays_in(second[:3]) + [a for a in arrays_in(second[3]) if
                                       not any(a is b for b in inputs)]
    for a in arrays_in(first[:3]):
        assert not any(np.shares_memory(a, b) for b in results)


LAYER_CASES = [case for mode in MODES for case in option_cases(mode)
               if case.num_layers > 1 or case.lengths or case.proj_size][:: 2]


@pytest.mark.parametrize("case", LAYER_CASES, ids=case_id)
def test_layer_backward_never_writes_into_the_forward_pass(case):
    module = make_module(replace(case, dropout=0.5 if case.num_layers > 1 else 0.0))
    module.train()
    data = make_data(case, np.random.default_rng(3))
    output, state = module.forward(data.x, data.hx, data.lengths)
    forward = snapshot([data.x, data.hx, output, state, module._saved,
                        dict(module.named_parameters())])
    module.backward(data.grad_output, data.grad_state)
    assert_unchanged(forward, f"{case_id(case)}: the forward's arrays after backward")


def test_a_second_forward_leaves_the_first_calls_results_alone():
    case = layer_case("LSTM", num_layers=2, bidirectional=True, batch=3, seq_len=4,
                      lengths=(4, 1, 2))
    module = make_module(case)
    data = make_data(case, np.random.default_rng(5))
    output, (h_n, c_n) = module.forward(data.x, data.hx, data.lengths)
    kept = snapshot([output, h_n, c_n])
    module.forward(-data.x, data.hx, data.lengths)
    assert_unchanged(kept, "the first forward's results after a second forward")


# -- anchor tags -----------------------------------------------------------------------------
TAG = re.compile(r"\{#([^}]*)\}")
STEP_FUNCTIONS = {
    "functional/rnn_cell.py": ("rnn_step_forward", "rnn_step_backward"),
    "functional/lstm_cell.py": ("lstm_step_forward", "lstm_step_backward"),
    "functional/gru_cell.py": ("gru_step_forward", "gru_step_backward"),
}


def test_anchor_tags_are_well_formed_and_unique():
    seen: dict[str, str] = {}
    for path in sorted(SCRATCH.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for name in TAG.findall(line):
                where = f"{path.relative_to(SCRATCH)}:{number}"
                assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), f"{where}: {{#{name}}}"
                assert name not in seen, f"{{#{name}}} at {where} and at {seen[name]}"
                seen[name] = where
    assert len(seen) >= 60


@pytest.mark.parametrize("file", sorted(STEP_FUNCTIONS))
def test_every_equation_of_a_step_function_carries_a_tag(file):
    """Every assignment in a step function (but unpacking the cache and looking up the
    activation) is an equation line, with its tag on the statement's first line."""
    text = (SCRATCH / file).read_text()
    lines = text.splitlines()
    functions = {node.name: node for node in ast.walk(ast.parse(text))
                 if isinstance(node, ast.FunctionDef)}
    for name in STEP_FUNCTIONS[file]:
        assignments = [node for node in ast.walk(functions[name])
                       if isinstance(node, ast.Assign)
                       and ast.unparse(node.value) not in ("cache",)
                       and not ast.unparse(node.value).startswith("ACTIVATIONS[")]
        assert len(assignments) >= 2
        for node in assignments:
            assert TAG.search(lines[node.lineno - 1]), f"{file}:{node.lineno} ({name}) has no tag"
