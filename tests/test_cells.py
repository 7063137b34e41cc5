"""The cells (scratch.RNNCell, LSTMCell, GRUCell): against torch.nn's cells, against
finite differences, batched and unbatched, accumulation, and against the layers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from helpers import (
    assert_close,
    assert_matches_fd,
    f32_rel,
    layer_case,
    make_module,
)

import scratch
import torch_impl

KINDS = ("RNNCell-tanh", "RNNCell-relu", "LSTMCell", "GRUCell")
I, H = 3, 4


def make_cell(kind: str, bias: bool = True, dtype=np.float64, seed: int = 0):
    if kind.startswith("RNNCell"):
        return scratch.RNNCell(I, H, bias=bias, nonlinearity=kind.split("-")[1], dtype=dtype,
                               seed=seed)
    return getattr(scratch, kind)(I, H, bias=bias, dtype=dtype, seed=seed)


@dataclass
class CellData:
    x: np.ndarray  # (B, I) or (I,)
    hx: object  # None, (B, H) / (H,), or a pair of them for LSTMCell
    grad_h: np.ndarray
    grad_c: np.ndarray | None  # LSTMCell only


def make_cell_data(kind, batched, hx_given, rng, B=2, dtype=np.float64) -> CellData:
    lead = (B,) if batched else ()

    def draw(*shape):
        return rng.uniform(-1.0, 1.0, size=lead + shape).astype(dtype)

    x = draw(I) * 2.0
    if kind == "LSTMCell":
        hx = (draw(H), draw(H)) if hx_given else None
        return CellData(x, hx, draw(H), draw(H))
    return CellData(x, draw(H) if hx_given else None, draw(H), None)


def hx_parts(hx) -> list:
    if hx is None:
        return []
    return list(hx) if isinstance(hx, tuple) else [hx]


def cell_loss(cell, data: CellData) -> float:
    result = cell.forward(data.x, data.hx)
    if isinstance(result, tuple):
        return float(np.sum(result[0] * data.grad_h) + np.sum(result[1] * data.grad_c))
    return float(np.sum(result * data.grad_h))


def cell_backward(cell, data: CellData):
    if data.grad_c is not None:
        return cell.backward(data.grad_h, data.grad_c)
    return cell.backward(data.grad_h)


CASES = [(kind, bias, batched, hx_given) for kind in KINDS for bias in (True, False)
         for batched in (True, False) for hx_given in (True, False)]


def case_id(case) -> str:
    kind, bias, batched, hx_given = case
    return f"{kind}-bias{int(bias)}-{'batched' if batched else 'unbatched'}-hx{int(hx_given)}"


def rng_for(case, salt=0):
    return np.random.default_rng([salt, *case_id(case).encode()])


def torch_cell_run(cell, data: CellData):
    """The torch.nn cell twin on the same data: (outputs, grad_input, grad_hx, param grads)."""
    twin = torch_impl.to_torch(cell)
    x = torch.tensor(data.x, requires_grad=True)
    parts = [torch.tensor(h, requires_grad=True) for h in hx_parts(data.hx)]
    hx = None if not parts else (tuple(parts) if len(parts) == 2 else parts[0])
    result = twin(x, hx)
    outputs = list(result) if isinstance(result, tuple) else [result]
    loss = (outputs[0] * torch.tensor(data.grad_h)).sum()
    if data.grad_c is not None:
        loss = loss + (outputs[1] * torch.tensor(data.grad_c)).sum()
    loss.backward()
    grads = {}
    for name, param in twin.named_parameters():
        assert param.grad is not None, f"torch left {name}.grad None"
        grads[name] = param.grad.numpy()
    return ([o.detach().numpy() for o in outputs], x.grad.numpy(),
            [p.grad.numpy() for p in parts], grads)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_cell_matches_torch_float64(case):
    kind, bias, batched, hx_given = case
    cell = make_cell(kind, bias, seed=1)
    data = make_cell_data(kind, batched, hx_given, rng_for(case))
    result = cell.forward(data.x, data.hx)
    outputs = list(result) if isinstance(result, tuple) else [result]
    grad_input, grad_hx = cell_backward(cell, data)
    t_outputs, t_grad_input, t_grad_hx, t_grads = torch_cell_run(cell, data)

    names = ("h'", "c'") if kind == "LSTMCell" else ("h'",)
    for name, ours, theirs in zip(names, outputs, t_outputs, strict=True):
        assert_close(ours, theirs, name)
    assert_close(grad_input, t_grad_input, "grad_input")
    if hx_given:
        assert_close(hx_parts(grad_hx), t_grad_hx, "grad_hx")
    else:
        assert grad_hx is None
    assert list(cell.grads) == list(t_grads)
    for name, grad in t_grads.items():
        assert_close(cell.grads[name], grad, f"grad of {name}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batched", [True, False])
def test_cell_matches_torch_float32_loosely(kind, batched):
    """One step in float32 on both sides, against parity/tolerances.py's float32 bound."""
    case = (kind, True, batched, True)
    cell = make_cell(kind, dtype=np.float32, seed=2)
    data = make_cell_data(kind, batched, True, rng_for(case, 2), dtype=np.float32)
    result = cell.forward(data.x, data.hx)
    outputs = list(result) if isinstance(result, tuple) else [result]
    grad_input, grad_hx = cell_backward(cell, data)
    t_outputs, t_grad_input, t_grad_hx, t_grads = torch_cell_run(cell, data)
    assert all(o.dtype == np.float32 for o in outputs) and grad_input.dtype == np.float32
    for ours, theirs in zip(outputs + [grad_input] + hx_parts(grad_hx),
                            t_outputs + [t_grad_input] + t_grad_hx, strict=True):
        assert_close(ours, theirs, "output or gradient", f32_rel(1))
    for name, grad in t_grads.items():
        assert_close(cell.grads[name], grad, f"grad of {name}", f32_rel(1))


@pytest.mark.parametrize("case", [c for c in CASES if c[3]], ids=case_id)
def test_cell_gradients_match_finite_differences(case):
    kind, bias, batched, _ = case
    cell = make_cell(kind, bias, seed=3)
    data = make_cell_data(kind, batched, True, rng_for(case, 3))
    cell.forward(data.x, data.hx)
    grad_input, grad_hx = cell_backward(cell, data)
    grads = {name: g.copy() for name, g in cell.named_grads()}

    def loss():
        return cell_loss(cell, data)

    for name, param in cell.named_parameters():
        assert_matches_fd(grads[name], loss, param, f"grad of {name}")
    assert_matches_fd(grad_input, loss, data.x, "grad_input")
    for k, (grad, part) in enumerate(zip(hx_parts(grad_hx), hx_parts(data.hx), strict=True)):
        assert_matches_fd(grad, loss, part, f"grad_hx[{k}]")


@pytest.mark.parametrize("which", ["grad_h", "grad_c"])
def test_lstm_cell_backward_with_one_gradient_missing_is_zero_for_it(which):
    cell = make_cell("LSTMCell", seed=4)
    data = make_cell_data("LSTMCell", True, True, np.random.default_rng(4))
    if which == "grad_h":
        data.grad_h = np.zeros_like(data.grad_h)
    else:
        data.grad_c = np.zeros_like(data.grad_c)
    cell.forward(data.x, data.hx)
    expected_input, expected_hx = cell.backward(data.grad_h, data.grad_c)
    expected_grads = {name: g.copy() for name, g in cell.named_grads()}
    cell.zero_grad()
    cell.forward(data.x, data.hx)
    kwargs = {"grad_c": data.grad_c} if which == "grad_h" else {"grad_h": data.grad_h}
    grad_input, grad_hx = cell.backward(**kwargs)
    assert np.array_equal(grad_input, expected_input)
    for a, b in zip(grad_hx, expected_hx, strict=True):
        assert np.array_equal(a, b)
    for name, grad in cell.grads.items():
        assert np.array_equal(grad, expected_grads[name])
        assert np.any(grad != 0)


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_cell_is_a_batch_of_one(kind):
    cell = make_cell(kind, seed=5)
    data = make_cell_data(kind, False, True, np.random.default_rng(5))
    result = cell.forward(data.x, data.hx)
    grad_input, grad_hx = cell_backward(cell, data)
    grads = {name: g.copy() for name, g in cell.named_grads()}
    assert grad_input.shape == (I,)
    for part in hx_parts(grad_hx) + hx_parts(result):
        assert part.shape == (H,)

    cell.zero_grad()
    batched_hx = [p[None] for p in hx_parts(data.hx)]
    batched_result = cell.forward(data.x[None],
                                  tuple(batched_hx) if kind == "LSTMCell" else batched_hx[0])
    batched = make_cell_data(kind, True, True, np.random.default_rng(0), B=1)
    batched.grad_h = data.grad_h[None]
    batched.grad_c = None if data.grad_c is None else data.grad_c[None]
    b_grad_input, b_grad_hx = cell_backward(cell, batched)
    for a, b in zip(hx_parts(result), hx_parts(batched_result), strict=True):
        assert_close(a, b[0], "output")
    assert_close(grad_input, b_grad_input[0], "grad_input")
    for a, b in zip(hx_parts(grad_hx), hx_parts(b_grad_hx), strict=True):
        assert_close(a, b[0], "grad_hx")
    for name, grad in cell.grads.items():
        assert_close(grads[name], grad, f"grad of {name}")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hx_given", [True, False])
def test_empty_batch_cell_works_like_torch(kind, hx_given):
    cell = make_cell(kind, seed=6)
    data = make_cell_data(kind, True, hx_given, np.random.default_rng(6), B=0)
    result = cell.forward(data.x, data.hx)
    grad_input, grad_hx = cell_backward(cell, data)
    t_outputs, t_grad_input, t_grad_hx, _ = torch_cell_run(cell, data)
    for ours, theirs in zip(hx_parts(result), t_outputs, strict=True):
        assert ours.shape == theirs.shape == (0, H)
    assert grad_input.shape == t_grad_input.shape == (0, I)
    assert [g.shape for g in hx_parts(grad_hx)] == [g.shape for g in t_grad_hx]
    assert all(np.all(g == 0) for g in cell.grads.values())


@pytest.mark.parametrize("kind", KINDS)
def test_cell_gradients_accumulate_and_zero_grad_clears(kind):
    cell = make_cell(kind, seed=7)
    first = make_cell_data(kind, True, True, np.random.default_rng(70))
    second = make_cell_data(kind, True, True, np.random.default_rng(71))
    single = []
    for data in (first, second):
        cell.zero_grad()
        cell.forward(data.x, data.hx)
        cell_backward(cell, data)
        single.append({name: g.copy() for name, g in cell.named_grads()})
    cell.zero_grad()
    for data in (first, second):
        cell.forward(data.x, data.hx)
        cell_backward(cell, data)
    for name, grad in cell.grads.items():
        assert_close(grad, single[0][name] + single[1][name], f"accumulated {name}")
        assert not np.allclose(grad, single[0][name])
    cell.zero_grad()
    assert all(np.all(g == 0) for g in cell.grads.values())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_unrolled_over_time_equals_the_one_layer_module(kind, bias):
    """Calling the cell step by step gives the output and h_n of the layer with the same
    weights (weight_ih -> weight_ih_l0, ...)."""
    mode = {"RNNCell-tanh": "RNN_TANH", "RNNCell-relu": "RNN_RELU"}.get(kind, kind[:-4])
    T, B = 4, 3
    cell = make_cell(kind, bias, seed=8)
    layer = make_module(layer_case(mode, bias=bias, input_size=I, hidden_size=H, seq_len=T,
                                   batch=B))
    layer.load_state_dict({f"{name}_l0": value for name, value in cell.state_dict().items()})
    rng = np.random.default_rng(8)
    xs = rng.uniform(-2, 2, size=(T, B, I))
    h = rng.uniform(-1, 1, size=(B, H))
    c = rng.uniform(-1, 1, size=(B, H))
    state = (h, c) if kind == "LSTMCell" else h
    outputs, final = layer(xs, (h[None], c[None]) if kind == "LSTMCell" else h[None])
    for t in range(T):
        state = cell(xs[t], state)
        h_t = state[0] if kind == "LSTMCell" else state
        assert_close(h_t, outputs[t], f"h at step {t}")
    if kind == "LSTMCell":
        assert_close(state[1], final[1][0], "c_n")


@pytest.mark.parametrize("kind", KINDS)
def test_cell_torch_twin_round_trip(kind):
    cell = make_cell(kind, bias=kind != "GRUCell", seed=9)
    twin = torch_impl.to_torch(cell)
    expected_type = getattr(torch.nn, kind.split("-")[0])
    assert type(twin) is expected_type
    back = torch_impl.from_torch(twin)
    assert type(back) is type(cell)
    assert back.bias == cell.bias and getattr(back, "nonlinearity", None) == getattr(
        cell, "nonlinearity", None)
    for (name, a), (t_name, b) in zip(cell.state_dict().items(), back.state_dict().items(),
                                      strict=True):
        assert name == t_name and np.array_equal(a, b)


def test_cell_repr_names_the_configuration():
    assert repr(scratch.RNNCell(3, 4)) == "RNNCell(3, 4)"
    assert repr(scratch.RNNCell(3, 4, bias=False, nonlinearity="relu")) == (
        "RNNCell(3, 4, bias=False, nonlinearity='relu')")
    assert repr(scratch.GRUCell(2, 5, dtype=np.float32)) == "GRUCell(2, 5, dtype=float32)"
