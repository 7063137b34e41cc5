"""torch_impl.equations against torch.nn: outputs, final states and every gradient.

Without masks it must agree with torch.nn.RNN / LSTM / GRU over the configuration space.
With explicit dropout masks (which torch.nn cannot take) it is checked against single-layer
torch.nn modules stacked by hand, each layer's output multiplied by its mask.
"""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from parity import spec, tolerances
from parity.case import Case, make_data
from parity.compare import compare_outcomes
from parity.reference import Outcome, torch_outcome
from parity.spec import ALL_MODES
from parity.strategies import PROFILES, cases
from torch_impl import equations


def assert_outcomes_agree(case, got: Outcome, want: Outcome) -> None:
    """Every tensor of two torch readings agrees. Neither side runs a second backward, so
    there is no accumulated gradient to compare (no grads_twice)."""
    checks = compare_outcomes(case, got, {}, want)
    assert not [c.name for c in checks if c.quantity == "grad_twice"]
    assert {f"grad[{name}]" for name in want.grads} <= {c.name for c in checks}
    failed = [c.describe() for c in checks if not c.passed]
    assert not failed, f"{case.describe()}:\n" + "\n".join(failed)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_equations_match_torch_nn(mode):
    @settings(max_examples=30)
    @given(case=cases(mode, PROFILES["quick"]))
    def check(case):
        if case.dropout_mode == "train_masks":
            case = dataclasses.replace(case, dropout_mode="train_p0", dropout=0.0)
        data = make_data(case)
        assert_outcomes_agree(case, torch_outcome(case, data, via="equations"),
                              torch_outcome(case, data, via="nn"))

    check()


def stacked_layers(case, data):
    """torch.nn single-layer modules, stacked by hand with the masks between them."""
    dtype = torch.float64 if case.dtype == "float64" else torch.float32
    D, L = case.num_directions, case.num_layers
    params = {k: torch.tensor(v, requires_grad=True) for k, v in data.params.items()}
    x = torch.tensor(data.input, requires_grad=True)
    h0 = torch.tensor(data.h0, requires_grad=True) if data.h0 is not None else None
    c0 = torch.tensor(data.c0, requires_grad=True) if data.c0 is not None else None
    lengths = torch.tensor(case.lengths) if case.lengths is not None else None
    layer_input, h_n, c_n = x, [], []
    for layer in range(L):
        cls = getattr(nn, spec.MODES[case.mode].cls)
        extra = spec.layer_options(case.mode, case.proj_size)
        width = layer_input.shape[-1]
        module = cls(width, case.hidden_size, bias=case.bias, batch_first=case.batch_first,
                     bidirectional=case.bidirectional, dtype=dtype, **extra)
        # put the stacked model's leaf tensors in as this layer's weights (functional call)
        weights = {name.replace("_l0", f"_l{layer}"): name for name, _ in
                   module.named_parameters()}
        mapping = {own: params[full] for full, own in weights.items()}
        rows = slice(layer * D, (layer + 1) * D)
        hx = None
        if h0 is not None:
            hx = (h0[rows], c0[rows]) if case.mode == "LSTM" else h0[rows]
        inp = layer_input
        if lengths is not None:
            inp = pack_padded_sequence(layer_input, lengths, batch_first=case.batch_first,
                                       enforce_sorted=False)
        out, state = torch.func.functional_call(module, mapping, (inp, hx))
        if lengths is not None:
            out, _ = pad_packed_sequence(out, batch_first=case.batch_first,
                                         total_length=case.seq_len)
        h, c = state if case.mode == "LSTM" else (state, None)
        h_n.append(h)
        c_n.append(c)
        if layer < L - 1:
            out = out * torch.tensor(data.masks[layer])
        layer_input = out
    h_n_t = torch.cat(h_n)
    c_n_t = torch.cat(c_n) if case.mode == "LSTM" else None
    tensors = [layer_input, h_n_t] + ([c_n_t] if c_n_t is not None else [])
    upstream = [torch.tensor(data.grad_output), torch.tensor(data.grad_h_n)]
    if c_n_t is not None:
        upstream.append(torch.tensor(data.grad_c_n))
    torch.autograd.backward(tensors, upstream)
    return Outcome(
        layer_input.detach().numpy(), h_n_t.detach().numpy(),
        None if c_n_t is None else c_n_t.detach().numpy(), x.grad.numpy(),
        None if h0 is None else h0.grad.numpy(), None if c0 is None else c0.grad.numpy(),
        {k: v.grad.numpy() for k, v in params.items()},
    )


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("layout", ["batch_first", "time_major"])
def test_explicit_masks_match_stacked_torch_layers(mode, layout):
    case = Case(mode=mode, input_size=3, hidden_size=4, num_layers=3, bidirectional=True,
                batch_first=layout == "batch_first", seq_len=5, batch=3, lengths=(5, 2, 4),
                proj_size=2 if mode == "LSTM" else 0,
                state_grad="both" if mode == "LSTM" else "h", dropout_mode="train_masks",
                dropout=0.5, seed=7)
    data = make_data(case)
    assert any(np.any(m == 0) for m in data.masks) and any(np.any(m == 2) for m in data.masks)
    assert_outcomes_agree(case, torch_outcome(case, data), stacked_layers(case, data))


def test_masks_change_the_result():
    """The masks reach the computation: other masks, other output and gradients."""
    case = Case(mode="GRU", input_size=2, hidden_size=3, num_layers=2, seq_len=4, batch=2,
                dropout_mode="train_masks", dropout=0.5, seed=3)
    data = make_data(case)
    ones = data._replace(masks=[np.ones_like(m) for m in data.masks])
    with_masks, without = torch_outcome(case, data), torch_outcome(case, ones)
    assert not np.allclose(with_masks.output, without.output)
    assert not np.allclose(with_masks.grads["weight_ih_l0"], without.grads["weight_ih_l0"])


def test_tolerance_used_here_is_the_float64_oracle():
    assert tolerances.tolerance(np.float64, 100, 4) == tolerances.FLOAT64_TOL


def _gru_params(H=3, I=2):
    g = torch.Generator().manual_seed(0)
    return {"weight_ih_l0": torch.rand(3 * H, I, generator=g, dtype=torch.float64),
            "weight_hh_l0": torch.rand(3 * H, H, generator=g, dtype=torch.float64)}


def test_config_is_read_from_the_state_dict():
    params = _gru_params()
    params["weight_ih_l0_reverse"] = params["weight_ih_l0"]
    config = equations.read_config("GRU", params)
    assert config == {"num_layers": 1, "num_directions": 2, "hidden_size": 3, "proj_size": 0,
                      "bias": False}


@pytest.mark.parametrize("mutate, message", [
    (lambda p, x, h: ("LSTMX", p, x, h, None), "mode must be one of"),
    (lambda p, x, h: ("GRU", p, x, torch.zeros(2, 2, 3, dtype=torch.float64), None),
     "h0 has shape"),
    (lambda p, x, h: ("GRU", p, x, h, [torch.ones(4, 2, 3)]), "dropout_masks must hold"),
    (lambda p, x, h: ("GRU", p, x[:, 0], h, None), "h0 has shape"),
    (lambda p, x, h: ("GRU", p, x[0, 0], h, None), "input must be 2-D or 3-D"),
])
def test_equations_refuse_bad_arguments(mutate, message):
    params = _gru_params()
    x = torch.ones(4, 2, 2, dtype=torch.float64)
    h = torch.zeros(1, 2, 3, dtype=torch.float64)
    mode, params, x, h, masks = mutate(params, x, h)
    with pytest.raises(ValueError, match=message):
        equations.forward(mode, params, x, h, dropout_masks=masks)


def test_lengths_need_batched_input():
    with pytest.raises(ValueError, match="lengths"):
        equations.forward("GRU", _gru_params(), torch.ones(4, 2, dtype=torch.float64),
                          lengths=[4])
