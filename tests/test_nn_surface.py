"""torch.nn's surface beyond forward, compared with the torch twin: parameters by attribute
(read and assign), all_weights, .double() / .float(), and flatten_parameters().

Where torch accepts a Parameter of any shape and fails in a later forward, scratch refuses the
assignment itself (a clear error before any work); the tests pin both behaviours.
"""

from __future__ import annotations

import copy
import itertools
import pickle

import numpy as np
import pytest
import torch
from helpers import (
    F64_REL,
    MODES,
    assert_close,
    assert_results_close,
    f32_rel,
    layer_case,
    make_data,
    make_module,
    run_scratch,
    run_torch,
)
from torch import nn

import scratch
import torch_impl
from parity.case import Case

LAYER_CASES = [
    layer_case(mode, num_layers=layers, bidirectional=bidirectional, bias=bias,
               proj_size=proj)
    for mode, layers, bidirectional, bias in itertools.product(MODES, (1, 2), (False, True),
                                                               (True, False))
    for proj in ((0, 2) if mode == "LSTM" else (0,))
]
CELL_KINDS = ("RNNCell", "LSTMCell", "GRUCell")
NUMPY_OF = {torch.float32: np.float32, torch.float64: np.float64}


def case_id(case: Case) -> str:
    return (f"{case.mode}-L{case.num_layers}-{'bi' if case.bidirectional else 'uni'}"
            f"-bias{int(case.bias)}-proj{case.proj_size}")


def make_cell(kind: str, bias: bool = True, dtype=np.float64, seed: int = 0):
    return getattr(scratch, kind)(3, 4, bias=bias, dtype=dtype, seed=seed)


ALL_MODULES = [pytest.param(lambda c=c: make_module(c), id=case_id(c)) for c in LAYER_CASES] + [
    pytest.param(lambda k=k, b=b: make_cell(k, b), id=f"{k}-bias{int(b)}")
    for k in CELL_KINDS for b in (True, False)
]


def every_name(num_layers: int = 2) -> list[str]:
    """Every parameter name a recurrent layer or cell of any configuration can have."""
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"]
    suffixes = [""] + [f"_l{k}{r}" for k in range(num_layers) for r in ("", "_reverse")]
    return [n + s for n in names for s in suffixes]


def fresh(array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new random array shaped and typed like ``array``."""
    return rng.uniform(-0.5, 0.5, size=array.shape).astype(array.dtype)


def assign_every_parameter(ours, twin, seed: int) -> None:
    """Give each parameter a new random array, by attribute, on both sides."""
    rng = np.random.default_rng(seed)
    for name, param in list(ours.named_parameters()):
        new = fresh(param, rng)
        setattr(ours, name, new)
        setattr(twin, name, nn.Parameter(torch.tensor(new)))
        assert getattr(ours, name) is new
        assert dict(ours.named_parameters())[name] is new


def as_tensors(value):
    """An array, a pair of arrays or None, as torch takes it."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(torch.tensor(v) for v in value)
    return torch.tensor(value)


def assert_same_results(ours, theirs, name: str) -> None:
    """What forward returned (arrays nested in pairs) against torch's, to the float64 bound."""
    if isinstance(ours, tuple):
        assert isinstance(theirs, tuple) and len(ours) == len(theirs), name
        for k, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_results(a, b, f"{name}[{k}]")
        return
    assert_close(ours, theirs.detach().numpy(), name)


# -- parameters by attribute ------------------------------------------------------------------
@pytest.mark.parametrize("build", ALL_MODULES)
def test_each_parameter_reads_as_the_modules_own_array_under_torchs_name(build):
    ours = build()
    twin = torch_impl.to_torch(ours)
    own = dict(ours.named_parameters())
    for name, theirs in twin.named_parameters():
        assert getattr(ours, name) is own[name], f"{name} is not the module's own array"
        assert getattr(ours, name).shape == tuple(theirs.shape), name
        np.testing.assert_array_equal(getattr(ours, name), theirs.detach().numpy())
    for name in every_name():  # a name torch lacks is missing here too; one it holds as None
        assert hasattr(ours, name) == hasattr(twin, name), name
        if hasattr(twin, name) and getattr(twin, name) is None:
            assert getattr(ours, name) is None, name
            assert name in dir(ours)
    assert set(own) <= set(dir(ours))


def test_a_missing_attribute_is_still_an_attribute_error():
    lstm = scratch.LSTM(3, 4)
    with pytest.raises(AttributeError, match="'LSTM' object has no attribute 'weight_hr_l0'"):
        lstm.weight_hr_l0  # noqa: B018
    assert getattr(lstm, "weight_ih_l1", "none") == "none"


def test_changing_the_array_read_by_attribute_changes_what_forward_computes():
    """In place, through the attribute, as torch.no_grad(): lstm.weight_hh_l0 *= 0.5."""
    case = layer_case("LSTM", num_layers=2, bidirectional=True, proj_size=2)
    ours = make_module(case)
    twin = torch_impl.to_torch(ours)
    ours.weight_hh_l0 *= 0.5
    with torch.no_grad():
        twin.weight_hh_l0 *= 0.5
    data = make_data(case, np.random.default_rng(1))
    assert_same_results(ours(data.x, data.hx), twin(torch.tensor(data.x), as_tensors(data.hx)),
                        "forward")


def test_assigning_a_parameter_to_itself_keeps_its_gradient():
    rnn = scratch.RNN(3, 4, seed=0)
    rnn(np.ones((2, 1, 3)))
    rnn.backward(np.ones((2, 1, 4)))
    grad = rnn.grads["weight_hh_l0"].copy()
    assert np.any(grad != 0)
    rnn.weight_hh_l0 *= 2.0
    np.testing.assert_array_equal(rnn.grads["weight_hh_l0"], grad)


LAYER_ASSIGN_CASES = [
    layer_case("RNN_TANH", num_layers=2, bidirectional=True),
    layer_case("RNN_RELU", bias=False, batch_first=True),
    layer_case("GRU", num_layers=2, batch_first=True, bidirectional=True),
    layer_case("LSTM", num_layers=2, bidirectional=True, proj_size=2),
    layer_case("LSTM", unbatched=True, batch=1, bias=False),
]


@pytest.mark.parametrize("case", LAYER_ASSIGN_CASES, ids=case_id)
def test_after_assigning_every_weight_by_attribute_the_layer_computes_what_torch_does(case):
    ours = make_module(case)
    twin = torch_impl.to_torch(ours)
    assign_every_parameter(ours, twin, seed=2)
    data = make_data(case, np.random.default_rng(3))
    assert_same_results(ours(data.x, data.hx), twin(torch.tensor(data.x), as_tensors(data.hx)),
                        "forward")
    # the gradients land on the assigned arrays, and agree with torch's
    assert_results_close(run_scratch(ours, data), run_torch(ours, data))


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_after_assigning_every_weight_by_attribute_the_cell_computes_what_torch_does(kind):
    ours = make_cell(kind)
    twin = torch_impl.to_torch(ours)
    assign_every_parameter(ours, twin, seed=4)
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (2, 3))
    h = rng.uniform(-1, 1, (2, 4))
    hx = (h, rng.uniform(-1, 1, (2, 4))) if kind == "LSTMCell" else h
    assert_same_results(ours(x, hx), twin(torch.tensor(x), as_tensors(hx)), "forward")


def test_a_new_array_starts_with_a_zero_gradient_as_a_new_torch_parameter():
    rnn = scratch.RNN(3, 4, seed=0)
    rnn(np.ones((2, 1, 3)))
    rnn.backward(np.ones((2, 1, 4)))
    assert np.any(rnn.grads["weight_hh_l0"] != 0)
    rnn.weight_hh_l0 = rnn.weight_hh_l0.copy()
    assert not np.any(rnn.grads["weight_hh_l0"])
    assert np.any(rnn.grads["weight_ih_l0"])  # the others keep theirs


def _read_only(array: np.ndarray) -> np.ndarray:
    copy = array.copy()
    copy.flags.writeable = False
    return copy


# (value made from the module, error type, what the message must say) for lstm.weight_ih_l0,
# of shape (16, 3)
BAD_VALUES = {
    "shape": (lambda m: np.zeros((5, 3)), ValueError,
              r"LSTM.weight_ih_l0 has shape \(5, 3\), expected \(16, 3\)"),
    "dtype": (lambda m: np.zeros((16, 3), np.float32), TypeError,
              "LSTM.weight_ih_l0 has dtype float32, expected float64"),
    "list": (lambda m: m.weight_ih_l0.tolist(), TypeError,
             r"cannot assign 'list' as parameter 'weight_ih_l0' \(numpy.ndarray of shape "
             r"\(16, 3\) expected\)"),
    "None": (lambda m: None, TypeError, "cannot assign 'NoneType' as parameter 'weight_ih_l0'"),
    "tensor": (lambda m: torch.zeros(16, 3, dtype=torch.float64), TypeError,
               "cannot assign 'Tensor' as parameter 'weight_ih_l0'"),
    "nan": (lambda m: np.full((16, 3), np.nan), ValueError,
            "LSTM.weight_ih_l0 holds NaN or infinite values"),
    "read-only": (lambda m: _read_only(m.weight_ih_l0), ValueError,
                  "LSTM.weight_ih_l0 must be writeable"),
    "tied": (lambda m: m.weight_ih_l0_reverse, ValueError,
             "LSTM.weight_ih_l0 would share memory with weight_ih_l0_reverse"),
}


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_a_bad_assignment_is_refused_naming_the_parameter_and_changes_nothing(bad):
    make_value, error, message = BAD_VALUES[bad]
    lstm = scratch.LSTM(3, 4, bidirectional=True, seed=0)
    before = lstm.weight_ih_l0
    saved = before.copy()
    value = make_value(lstm)
    with pytest.raises(error, match=message):
        lstm.weight_ih_l0 = value
    assert lstm.weight_ih_l0 is before
    np.testing.assert_array_equal(lstm.weight_ih_l0, saved)


def test_torch_refuses_a_plain_tensor_as_we_refuse_anything_but_an_array():
    twin = nn.LSTM(3, 4)
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' as parameter "
                                        "'weight_ih_l0'"):
        twin.weight_ih_l0 = torch.zeros(16, 3)


def test_torch_takes_a_parameter_of_the_wrong_shape_where_we_refuse_at_once():
    """torch checks the shape only in a later forward, and not on every path: its float32 LSTM
    on the CPU (oneDNN) ran with a (5, 3) weight_ih_l0 without a word in torch 2.13."""
    twin = nn.LSTM(3, 4)
    twin.weight_ih_l0 = nn.Parameter(torch.zeros(5, 3))  # accepted
    assert tuple(twin.weight_ih_l0.shape) == (5, 3)
    with pytest.raises(ValueError, match=r"has shape \(5, 3\), expected \(16, 3\)"):
        scratch.LSTM(3, 4).weight_ih_l0 = np.zeros((5, 3))


def test_a_cell_without_bias_refuses_a_bias_by_attribute():
    cell = scratch.GRUCell(3, 4, bias=False)
    with pytest.raises(AttributeError, match="GRUCell was built without bias_ih"):
        cell.bias_ih = np.zeros(12)
    assert cell.bias_ih is None and "bias_ih" not in cell.grads


def test_other_attributes_stay_plain_and_copies_still_work():
    lstm = scratch.LSTM(3, 4, seed=0)
    lstm.note = "mine"
    assert lstm.note == "mine" and "note" not in dict(lstm.named_parameters())
    for twin in (copy.deepcopy(lstm), pickle.loads(pickle.dumps(lstm))):
        assert twin.weight_ih_l0 is not lstm.weight_ih_l0
        np.testing.assert_array_equal(twin.weight_ih_l0, lstm.weight_ih_l0)
        assert twin.weight_ih_l0 is dict(twin.named_parameters())["weight_ih_l0"]


# -- all_weights -------------------------------------------------------------------------------
@pytest.mark.parametrize("case", LAYER_CASES, ids=case_id)
def test_all_weights_is_torchs_lists_of_the_modules_own_arrays(case):
    ours = make_module(case)
    twin = torch_impl.to_torch(ours)
    assert len(ours.all_weights) == len(twin.all_weights) == case.num_layers * case.num_directions
    own = dict(ours.named_parameters())
    for ours_list, theirs_list, names in zip(ours.all_weights, twin.all_weights,
                                             twin._all_weights):
        assert len(ours_list) == len(theirs_list) == len(names)
        for array, theirs, name in zip(ours_list, theirs_list, names):
            assert array is own[name], f"all_weights holds a copy of {name}"
            np.testing.assert_array_equal(array, theirs.detach().numpy())
    # flattened, torch's order is named_parameters()' order
    flat = [a for arrays in ours.all_weights for a in arrays]
    assert [id(a) for a in flat] == [id(a) for a in own.values()]


def test_all_weights_follows_an_assignment():
    gru = scratch.GRU(3, 4, num_layers=2)
    new = np.zeros_like(gru.bias_hh_l1)
    gru.bias_hh_l1 = new
    assert gru.all_weights[1][3] is new


# -- .double() and .float() ---------------------------------------------------------------------
def _dtype_cases():
    layers = [pytest.param(lambda c=c: make_module(c, dtype=np.float32), id=case_id(c))
              for c in LAYER_ASSIGN_CASES]
    cells = [pytest.param(lambda k=k: make_cell(k, dtype=np.float32), id=k) for k in CELL_KINDS]
    return layers + cells


def _run_both(ours, twin, seed: int) -> np.ndarray:
    """One forward and backward on each side, with the same random input and upstream gradient
    of the first output (h' of a cell, output of a layer), in the module's dtype. Returns x."""
    rng = np.random.default_rng(seed)
    layer = isinstance(ours, scratch.RNNBase)
    x = rng.uniform(-1, 1, (3, 2, ours.input_size) if layer else (2, ours.input_size))
    x = x.astype(ours.dtype)
    out = ours(x)
    out = out[0] if isinstance(out, tuple) else out
    grad = rng.uniform(-1, 1, out.shape).astype(ours.dtype)
    ours.backward(grad, None) if isinstance(ours, scratch.LSTMCell) else ours.backward(grad)
    t_out = twin(torch.tensor(x))
    t_out = t_out[0] if isinstance(t_out, tuple) else t_out
    t_out.backward(torch.tensor(grad))
    return x


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("build", _dtype_cases())
def test_double_converts_parameters_and_gradients_as_torch_and_returns_self(build):
    ours = build()
    twin = torch_impl.to_torch(ours)
    x = _run_both(ours, twin, 5)
    assert ours.double() is ours
    twin.double()
    assert ours.dtype == np.float64
    rel = f32_rel(3, getattr(ours, "num_layers", 1))  # the gradients were computed in float32
    for name, theirs in twin.named_parameters():
        assert getattr(ours, name).dtype == np.float64 == NUMPY_OF[theirs.dtype], name
        assert ours.grads[name].dtype == np.float64 == NUMPY_OF[theirs.grad.dtype], name
        np.testing.assert_array_equal(getattr(ours, name), theirs.detach().numpy())
        assert_close(ours.grads[name], theirs.grad.numpy(), f"grad of {name}", rel)
    # now a float64 module: float64 input, and torch's float64 results to the float64 tolerance
    twin.zero_grad()
    ours.zero_grad()
    _run_both(ours, twin, 6)
    for name, theirs in twin.named_parameters():
        assert_close(ours.grads[name], theirs.grad.numpy(), f"grad of {name}", F64_REL)
    with pytest.raises(TypeError, match="has dtype float32, but the module's parameters are "
                                        "float64"):
        ours(x)


@pytest.mark.parametrize("build", ALL_MODULES)
def test_float_converts_to_float32_and_back_as_torch(build):
    ours = build()
    twin = torch_impl.to_torch(ours)
    assert ours.float() is ours
    twin.float()
    assert ours.dtype == np.float32
    for name, theirs in twin.named_parameters():
        assert getattr(ours, name).dtype == np.float32 == NUMPY_OF[theirs.dtype], name
        assert ours.grads[name].dtype == np.float32, name
        np.testing.assert_array_equal(getattr(ours, name), theirs.detach().numpy())
    same = dict(ours.named_parameters())
    assert ours.float() is ours  # already float32: nothing is copied
    assert all(getattr(ours, n) is a for n, a in same.items())
    ours.double()
    twin.double()
    for name, theirs in twin.named_parameters():
        np.testing.assert_array_equal(getattr(ours, name), theirs.detach().numpy())
    if isinstance(ours, scratch.RNNBase):
        assert all(a.dtype == np.float64 for arrays in ours.all_weights for a in arrays)


def test_a_dtype_change_drops_what_the_last_forward_kept():
    lstm = scratch.LSTM(3, 4, seed=0)
    lstm(np.ones((2, 1, 3)))
    lstm.float()
    with pytest.raises(scratch.CallOrderError, match="called before forward"):
        lstm.backward(np.ones((2, 1, 4), np.float32))


def test_double_reaches_the_children_of_a_model():
    model = scratch.SimpleRNN(3, 4, 2, kind="gru", dtype=np.float32, seed=0)
    assert model.double() is model
    assert model.dtype == model.rnn.dtype == model.head.dtype == np.float64
    assert all(a.dtype == np.float64 for a in model.parameters())
    assert all(g.dtype == np.float64 for g in model.grads.values())


# -- flatten_parameters ------------------------------------------------------------------------
@pytest.mark.parametrize("case", LAYER_ASSIGN_CASES, ids=case_id)
def test_flatten_parameters_is_a_no_op_as_torchs_on_the_cpu(case):
    ours = make_module(case)
    twin = torch_impl.to_torch(ours)
    before = {name: (a, a.copy()) for name, a in ours.named_parameters()}
    assert ours.flatten_parameters() is None
    assert twin.flatten_parameters() is None
    for name, (array, values) in before.items():
        assert getattr(ours, name) is array
        np.testing.assert_array_equal(array, values)
        np.testing.assert_array_equal(array, getattr(twin, name).detach().numpy())
    assert not hasattr(scratch.LSTMCell(3, 4), "flatten_parameters")
    assert not hasattr(nn.LSTMCell(3, 4), "flatten_parameters")
