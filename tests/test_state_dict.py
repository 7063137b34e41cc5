"""Parameters and state dicts: torch's init, seeds, torch's keys/order/shapes, round trips
through torch, and load_state_dict's refusals (which copy nothing)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from helpers import MODES, layer_case, make_module, option_cases
from torch import nn

import scratch
import torch_impl
from parity import spec

LAYER_CONFIGS = [
    (mode, layers, bidirectional, bias, proj)
    for mode, layers, bidirectional, bias in itertools.product(MODES, (1, 3), (False, True),
                                                               (True, False))
    for proj in ((0, 2) if mode == "LSTM" else (0,))
]


def config_id(config) -> str:
    mode, layers, bidirectional, bias, proj = config
    return f"{mode}-L{layers}-{'bi' if bidirectional else 'uni'}-bias{int(bias)}-proj{proj}"


def build_pair(config, dtype=np.float64, seed=0):
    """The scratch layer and torch.nn's layer of one configuration, built independently."""
    mode, layers, bidirectional, bias, proj = config
    case = layer_case(mode, num_layers=layers, bidirectional=bidirectional, bias=bias,
                      proj_size=proj, input_size=3, hidden_size=4)
    kw = dict(num_layers=layers, bidirectional=bidirectional, bias=bias)
    theirs = getattr(nn, spec.MODES[mode].cls)(3, 4, **spec.layer_options(mode, proj), **kw)
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    return make_module(case, dtype=dtype, seed=seed), theirs


CELL_KINDS = ("RNNCell", "LSTMCell", "GRUCell")


def build_cell_pair(kind, bias, dtype=np.float64, seed=0):
    ours = getattr(scratch, kind)(3, 4, bias=bias, dtype=dtype, seed=seed)
    theirs = getattr(nn, kind)(3, 4, bias=bias)
    return ours, theirs.to(torch.float64 if dtype == np.float64 else torch.float32)


ALL_PAIRS = [pytest.param(lambda c=c: build_pair(c), id=config_id(c)) for c in LAYER_CONFIGS] + [
    pytest.param(lambda k=k, b=b: build_cell_pair(k, b), id=f"{k}-bias{int(b)}")
    for k in CELL_KINDS for b in (True, False)
]


# -- init and seeds ---------------------------------------------------------------------------
@pytest.mark.parametrize("build", ALL_PAIRS)
def test_state_dict_keys_order_and_shapes_are_torchs(build):
    ours, theirs = build()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    assert list(ours.grads) == list(ours.state_dict())


@pytest.mark.parametrize("build", ALL_PAIRS)
def test_init_is_uniform_within_one_over_sqrt_hidden_size(build):
    ours, _ = build()
    bound = 1.0 / math.sqrt(ours.hidden_size)
    values = np.concatenate([p.ravel() for _, p in ours.named_parameters()])
    for name, param in ours.named_parameters():
        assert np.all(np.abs(param) <= bound), f"{name} leaves +-{bound}"
        assert np.unique(param).size == param.size, f"{name} has repeated values"
    # spread over the whole interval, both signs (a U(-b, b) sample of this size does)
    assert values.min() < -0.8 * bound and values.max() > 0.8 * bound
    assert abs(values.mean()) < 0.35 * bound


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_weights_different_seeds_differ(mode):
    case = layer_case(mode, num_layers=2, bidirectional=True,
                      proj_size=2 if mode == "LSTM" else 0)
    a, b, c = (make_module(case, seed=s) for s in (5, 5, 6))
    for (name, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(),
                                            c.named_parameters(), strict=True):
        assert np.array_equal(pa, pb), f"{name} differs for the same seed"
        assert not np.array_equal(pa, pc), f"{name} equal for different seeds"
    unseeded = [make_module(case, seed=None) for _ in range(2)]
    assert not np.array_equal(unseeded[0].state_dict()["weight_ih_l0"],
                              unseeded[1].state_dict()["weight_ih_l0"])


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_cell_seeds(kind):
    a, b, c = (getattr(scratch, kind)(3, 4, seed=s) for s in (1, 1, 2))
    for name in a.state_dict():
        assert np.array_equal(a.state_dict()[name], b.state_dict()[name])
        assert not np.array_equal(a.state_dict()[name], c.state_dict()[name])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_grads_and_state_dict_have_the_modules_dtype(dtype):
    module = make_module(layer_case("LSTM", proj_size=1, num_layers=2), dtype=dtype)
    cell = scratch.GRUCell(2, 3, dtype=dtype)
    for m in (module, cell):
        for array in [*m.state_dict().values(), *m.grads.values(), *m.parameters()]:
            assert array.dtype == dtype


def test_state_dict_is_a_copy_and_named_parameters_are_live():
    module = make_module(layer_case("GRU"))
    state = module.state_dict()
    state["weight_hh_l0"][...] = 7.0
    assert not np.any(module.state_dict()["weight_hh_l0"] == 7.0)
    dict(module.named_parameters())["weight_hh_l0"][0, 0] = 7.0
    assert module.state_dict()["weight_hh_l0"][0, 0] == 7.0


# -- round trips through torch ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("build", ALL_PAIRS)
def test_torch_state_dict_loads_as_is_and_round_trips(build, dtype):
    ours, theirs = build() if dtype == np.float64 else build_float32(build)
    torch_state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict(torch_state)
    for (name, value), (t_name, t_value) in zip(ours.state_dict().items(),
                                                torch_state.items(), strict=True):
        assert name == t_name and np.array_equal(value, t_value)
    back = torch_impl.to_torch(ours).state_dict()
    assert list(back) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert back[name].dtype == value.dtype and torch.equal(back[name], value)
    again = torch_impl.from_torch(theirs)
    assert type(again) is type(ours)
    for (name, value), (_, other) in zip(again.state_dict().items(),
                                         ours.state_dict().items(), strict=True):
        assert np.array_equal(value, other), name


def build_float32(build):
    ours64, theirs = build()
    kind = type(ours64).__name__
    if kind in CELL_KINDS:
        return build_cell_pair(kind, ours64.bias, dtype=np.float32)
    config = (ours64.mode, ours64.num_layers, ours64.bidirectional, ours64.bias,
              ours64.proj_size)
    return build_pair(config, dtype=np.float32)


def test_torch_tensors_load_directly():
    ours, theirs = build_pair(("LSTM", 2, True, True, 1))
    ours.load_state_dict(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert np.array_equal(ours.state_dict()[name], value.numpy())


# -- load_state_dict's refusals ---------------------------------------------------------------
def corrupted(module, how):
    """A state dict of new values (so that a partial copy would show) with one fault."""
    rng = np.random.default_rng(0)
    state = {k: rng.uniform(-1, 1, v.shape).astype(v.dtype)
             for k, v in module.state_dict().items()}
    last = list(state)[-1]  # the fault is in the last entry: the others would be copied first
    if how == "nan":
        state[last][0] = np.nan
    elif how == "inf":
        state[last][-1] = -np.inf
    elif how == "unknown key":
        state["weight_ih_l9"] = state[last]
    elif how == "missing key":
        del state[last]
    elif how == "wrong shape":
        state[last] = state[last][:-1]
    elif how == "wrong dtype":
        state[last] = state[last].astype(np.float32)
    return state, last


REFUSALS = [
    ("nan", ValueError, "NaN"),
    ("inf", ValueError, "infinite"),
    ("unknown key", ValueError, "unexpected.*weight_ih_l9"),
    ("missing key", ValueError, "missing"),
    ("wrong shape", ValueError, "shape"),
    ("wrong dtype", TypeError, "dtype"),
]


@pytest.mark.parametrize(("how", "error", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
@pytest.mark.parametrize("kind", ["LSTM", "GRUCell"])
def test_load_state_dict_refuses_and_copies_nothing(kind, how, error, message):
    if kind == "LSTM":
        module = make_module(layer_case("LSTM", num_layers=2, bidirectional=True, proj_size=1))
    else:
        module = scratch.GRUCell(3, 4)
    before = module.state_dict()
    state, last = corrupted(module, how)
    with pytest.raises(error, match=message) as info:
        module.load_state_dict(state)
    if how != "unknown key":
        assert last in str(info.value), f"the message does not name {last!r}"
    for name, value in module.state_dict().items():
        assert np.array_equal(value, before[name]), f"{name} was changed by a refused load"


def test_option_cases_cover_every_mode():
    # the helpers' case list feeds several test files: make sure it stays complete
    for mode in MODES:
        cases = option_cases(mode)
        assert any(c.lengths for c in cases) and any(c.unbatched for c in cases)
        assert any(c.bidirectional for c in cases) and any(not c.bias for c in cases)
        assert any(c.num_layers == 3 for c in cases) and any(not c.hx for c in cases)
        assert mode != "LSTM" or any(c.proj_size for c in cases)
