"""Every refusal of the layers and the cells: the error's type, a message that names the
argument, and nothing changed by a refused call."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    Result,
    as_list,
    assert_results_close,
    layer_case,
    make_data,
    make_module,
    run_scratch,
)

import scratch
from scratch.recurrent import RNNBase

F64 = np.float64


def x_of(*shape, dtype=F64):
    return np.random.default_rng(0).uniform(-1, 1, size=shape).astype(dtype)


# -- construction -----------------------------------------------------------------------------
CONSTRUCTION = [
    ("input_size 0", lambda: scratch.RNN(0, 3), ValueError, "input_size"),
    ("hidden_size 0", lambda: scratch.LSTM(2, 0), ValueError, "hidden_size"),
    ("num_layers 0", lambda: scratch.GRU(2, 3, num_layers=0), ValueError, "num_layers"),
    ("input_size float", lambda: scratch.RNN(2.0, 3), TypeError, "input_size"),
    ("hidden_size bool", lambda: scratch.GRU(2, True), TypeError, "hidden_size"),
    ("bad nonlinearity", lambda: scratch.RNN(2, 3, nonlinearity="sigmoid"), ValueError,
     "nonlinearity.*sigmoid"),
    ("proj_size < 0", lambda: scratch.LSTM(2, 3, proj_size=-1), ValueError, "proj_size"),
    ("proj_size == hidden", lambda: scratch.LSTM(2, 3, proj_size=3), ValueError,
     "proj_size.*smaller than hidden_size"),
    ("proj_size > hidden", lambda: scratch.LSTM(2, 3, proj_size=5), ValueError, "proj_size"),
    ("proj_size on RNN", lambda: scratch.RNN(2, 3, proj_size=1), TypeError, "proj_size"),
    ("proj_size on GRU", lambda: scratch.GRU(2, 3, proj_size=1), TypeError, "proj_size"),
    ("proj_size on GRU mode", lambda: RNNBase("GRU", 2, 3, proj_size=1), ValueError,
     "proj_size.*only supported for LSTM"),
    ("proj_size on RNN mode", lambda: RNNBase("RNN_TANH", 2, 3, proj_size=1), ValueError,
     "proj_size"),
    ("dropout < 0", lambda: scratch.LSTM(2, 3, num_layers=2, dropout=-0.1), ValueError,
     "dropout.*-0.1"),
    ("dropout > 1", lambda: scratch.GRU(2, 3, num_layers=2, dropout=1.5), ValueError,
     "dropout.*1.5"),
    ("dropout str", lambda: scratch.RNN(2, 3, num_layers=2, dropout="0.5"), TypeError,
     "dropout"),
    ("bidirectional str", lambda: scratch.RNN(2, 3, bidirectional="yes"), TypeError,
     "bidirectional"),
    ("batch_first int", lambda: scratch.GRU(2, 3, batch_first=1), TypeError, "batch_first"),
    ("bias None", lambda: scratch.LSTM(2, 3, bias=None), TypeError, "bias"),
    ("dtype int", lambda: scratch.LSTM(2, 3, dtype=np.int64), TypeError, "dtype"),
    ("dtype float16", lambda: scratch.RNN(2, 3, dtype=np.float16), TypeError, "dtype"),
    ("cell input_size 0", lambda: scratch.RNNCell(0, 3), ValueError, "input_size"),
    ("cell hidden_size 0", lambda: scratch.LSTMCell(2, 0), ValueError, "hidden_size"),
    ("cell hidden_size str", lambda: scratch.GRUCell(2, "3"), TypeError, "hidden_size"),
    ("cell nonlinearity", lambda: scratch.RNNCell(2, 3, nonlinearity="gelu"), ValueError,
     "nonlinearity.*gelu"),
    ("cell bias str", lambda: scratch.GRUCell(2, 3, bias="no"), TypeError, "bias"),
    ("cell dtype", lambda: scratch.LSTMCell(2, 3, dtype=np.int32), TypeError, "dtype"),
    ("LSTMCell nonlinearity", lambda: scratch.LSTMCell(2, 3, nonlinearity="relu"), TypeError,
     "nonlinearity"),
]


@pytest.mark.parametrize(("build", "error", "message"), [c[1:] for c in CONSTRUCTION],
                         ids=[c[0] for c in CONSTRUCTION])
def test_construction_refusals(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize("mode", ["RNN_TANH", "LSTM", "GRU"])
def test_dropout_with_one_layer_warns(mode):
    with pytest.warns(UserWarning, match="dropout.*num_layers greater than 1"):
        make_module(layer_case(mode, dropout=0.5))


@pytest.mark.filterwarnings("error")
def test_dropout_with_two_layers_does_not_warn():
    make_module(layer_case("LSTM", num_layers=2, dropout=0.5))


# -- forward of the layers --------------------------------------------------------------------
def lstm():
    return make_module(layer_case("LSTM", num_layers=2, bidirectional=True, input_size=3,
                                  hidden_size=4, proj_size=2))


def gru():
    return make_module(layer_case("GRU", num_layers=2, input_size=3, hidden_size=4,
                                  dropout=0.5))


def rnn():
    return make_module(layer_case("RNN_TANH", input_size=3, hidden_size=4, batch_first=True))


# T = 5, B = 2; lstm: h0 (4, 2, 2), c0 (4, 2, 4); gru: h0 (2, 2, 4); rnn (batch_first): h0 (1, 2, 4)
X = x_of(5, 2, 3)
LSTM_HX = (x_of(4, 2, 2), x_of(4, 2, 4))
FORWARD = [
    ("input list", gru, lambda m: m(X.tolist()), TypeError, "input must be a numpy.ndarray"),
    ("input 1-D", gru, lambda m: m(x_of(3)), ValueError, "input.*got 1-D"),
    ("input 4-D", lstm, lambda m: m(x_of(5, 2, 1, 3)), ValueError, "input.*got 4-D"),
    ("input_size mismatch", lstm, lambda m: m(x_of(5, 2, 4)), ValueError,
     "input_size: expected 3, got 4"),
    ("input_size mismatch unbatched", rnn, lambda m: m(x_of(5, 2)), ValueError,
     "input_size: expected 3, got 2"),
    ("T == 0", gru, lambda m: m(x_of(0, 2, 3)), ValueError, "input.*at least one time step"),
    ("T == 0 batch_first", rnn, lambda m: m(x_of(2, 0, 3)), ValueError, "input.*time step"),
    ("input dtype", lstm, lambda m: m(X.astype(np.float32)), TypeError,
     "input has dtype float32.*float64"),
    ("hx wrong rows", gru, lambda m: m(X, x_of(1, 2, 4)), ValueError,
     r"hx has shape \(1, 2, 4\), expected \(2, 2, 4\)"),
    ("hx wrong batch", gru, lambda m: m(X, x_of(2, 3, 4)), ValueError, "hx has shape"),
    ("hx batch-first", rnn, lambda m: m(x_of(2, 5, 3), x_of(2, 1, 4)), ValueError,
     r"hx has shape \(2, 1, 4\), expected \(1, 2, 4\)"),
    ("hx 3-D for unbatched", gru, lambda m: m(x_of(5, 3), x_of(2, 1, 4)), ValueError,
     r"hx has shape \(2, 1, 4\), expected \(2, 4\)"),
    ("hx list", gru, lambda m: m(X, x_of(2, 2, 4).tolist()), TypeError, "hx must be a numpy"),
    ("hx dtype", gru, lambda m: m(X, x_of(2, 2, 4, dtype=np.float32)), TypeError,
     "hx has dtype float32"),
    ("LSTM hx not a pair", lstm, lambda m: m(X, LSTM_HX[0]), TypeError, "hx must be a pair"),
    ("LSTM hx triple", lstm, lambda m: m(X, LSTM_HX * 2), TypeError, "hx must be a pair"),
    ("LSTM hx c0 None", lstm, lambda m: m(X, (LSTM_HX[0], None)), TypeError, "hx.*c0"),
    ("LSTM h0 wrong width", lstm, lambda m: m(X, (x_of(4, 2, 4), LSTM_HX[1])), ValueError,
     r"hx\[0\] has shape \(4, 2, 4\), expected \(4, 2, 2\)"),
    ("LSTM c0 wrong width", lstm, lambda m: m(X, (LSTM_HX[0], x_of(4, 2, 2))), ValueError,
     r"hx\[1\] has shape \(4, 2, 2\), expected \(4, 2, 4\)"),
    ("LSTM c0 dtype", lstm, lambda m: m(X, (LSTM_HX[0], LSTM_HX[1].astype(np.float32))),
     TypeError, r"hx\[1\] has dtype"),
    ("lengths count", lstm, lambda m: m(X, lengths=[5, 5, 5]), ValueError,
     "lengths.*expected 2, got 3"),
    ("lengths zero", gru, lambda m: m(X, lengths=[5, 0]), ValueError, r"length.*1\.\.5.*0"),
    ("lengths negative", gru, lambda m: m(X, lengths=[-1, 5]), ValueError, "length"),
    ("lengths > T", lstm, lambda m: m(X, lengths=[6, 2]), ValueError, r"length.*1\.\.5.*6"),
    ("lengths float", gru, lambda m: m(X, lengths=[5.0, 2.0]), TypeError,
     "lengths must be a 1-D sequence of ints"),
    ("lengths 2-D", gru, lambda m: m(X, lengths=[[5, 2]]), TypeError, "lengths"),
    ("lengths unbatched", gru, lambda m: m(x_of(5, 3), lengths=[5]), ValueError,
     "lengths.*batched"),
    ("masks in eval mode", gru, lambda m: m.eval()(X, dropout_masks=[np.ones((5, 2, 4))]),
     ValueError, "dropout_masks.*eval mode"),
    ("masks count", gru, lambda m: m(X, dropout_masks=[np.ones((5, 2, 4))] * 2), ValueError,
     "dropout_masks.*num_layers - 1 = 1"),
    ("masks not a list", gru, lambda m: m(X, dropout_masks=np.ones((5, 2, 4))), ValueError,
     "dropout_masks"),
    ("masks shape", gru, lambda m: m(X, dropout_masks=[np.ones((2, 5, 4))]), ValueError,
     r"dropout_masks\[0\] has shape \(2, 5, 4\), expected \(5, 2, 4\)"),
    ("masks shape bidirectional", lstm, lambda m: m(X, dropout_masks=[np.ones((5, 2, 2))]),
     ValueError, r"dropout_masks\[0\].*expected \(5, 2, 4\)"),
    ("masks dtype", gru, lambda m: m(X, dropout_masks=[np.ones((5, 2, 4), np.float32)]),
     TypeError, r"dropout_masks\[0\] has dtype"),
    ("masks for one layer", rnn, lambda m: m(x_of(2, 5, 3), dropout_masks=[np.ones((2, 5, 4))]),
     ValueError, "dropout_masks.*num_layers - 1 = 0"),
]


@pytest.mark.parametrize(("build", "call", "error", "message"), [c[1:] for c in FORWARD],
                         ids=[c[0] for c in FORWARD])
def test_forward_refusals(build, call, error, message):
    module = build()
    with pytest.raises(error, match=message):
        call(module)


@pytest.mark.parametrize(("build", "call", "error", "message"), [c[1:] for c in FORWARD],
                         ids=[c[0] for c in FORWARD])
def test_refused_forward_keeps_the_last_forward_and_the_generator(build, call, error,
                                                                   message):
    """A refused forward changes nothing: the previous forward can still be gone back
    through, with the same result, and no dropout mask was drawn."""
    module = build().train()
    data = make_data(layer_case("LSTM", num_layers=2, bidirectional=True, seq_len=5, batch=2,
                                input_size=3, hidden_size=4, proj_size=2)
                     if module.mode == "LSTM" else
                     layer_case(module.mode, num_layers=module.num_layers, seq_len=5, batch=2,
                                input_size=3, hidden_size=4, batch_first=module.batch_first),
                     np.random.default_rng(1))
    output, state = module(data.x, data.hx)
    masks = module.last_dropout_masks
    rng_state = module.rng.bit_generator.state
    with pytest.raises(error):
        call(module)
    module.train()  # some calls switch to eval mode before they are refused
    assert module.rng.bit_generator.state == rng_state
    assert module.last_dropout_masks is masks
    grad_input, _ = module.backward(data.grad_output, data.grad_state)
    grads = {name: g.copy() for name, g in module.named_grads()}

    module.zero_grad()
    replayed, _ = module(data.x, data.hx, dropout_masks=masks)
    assert np.array_equal(replayed, output)
    expected_input, _ = module.backward(data.grad_output, data.grad_state)
    assert np.array_equal(grad_input, expected_input)
    for name, grad in module.grads.items():
        assert np.array_equal(grads[name], grad)


# -- backward of the layers -------------------------------------------------------------------
def test_backward_before_forward():
    module = lstm()
    with pytest.raises(scratch.CallOrderError, match="before forward"):
        module.backward(np.zeros((5, 2, 4)))


def test_backward_twice():
    module = gru()
    output, h_n = module(X)
    module.backward(np.ones_like(output))
    with pytest.raises(scratch.CallOrderError, match="already called"):
        module.backward(np.ones_like(output))


def test_call_order_error_is_a_runtime_and_a_value_error():
    assert issubclass(scratch.CallOrderError, RuntimeError)
    assert issubclass(scratch.CallOrderError, ValueError)


BACKWARD = [
    ("grad_output shape", lambda out, h: (np.zeros((5, 2, 3)), None), ValueError,
     r"grad_output has shape \(5, 2, 3\), expected \(5, 2, 4\)"),
    ("grad_output transposed", lambda out, h: (np.zeros((2, 5, 4)), None), ValueError,
     "grad_output has shape"),
    ("grad_output dtype", lambda out, h: (out.astype(np.float32), None), TypeError,
     "grad_output has dtype float32"),
    ("grad_output list", lambda out, h: (out.tolist(), None), TypeError,
     "grad_output must be a numpy"),
    ("grad_h_n shape", lambda out, h: (out, np.zeros((1, 2, 4))), ValueError,
     r"grad_h_n has shape \(1, 2, 4\), expected \(2, 2, 4\)"),
    ("grad_h_n dtype", lambda out, h: (out, h.astype(np.float32)), TypeError,
     "grad_h_n has dtype"),
]


@pytest.mark.parametrize(("grads", "error", "message"), [c[1:] for c in BACKWARD],
                         ids=[c[0] for c in BACKWARD])
def test_backward_refusals_leave_grads_and_cache_untouched(grads, error, message):
    module = gru()
    data = make_data(layer_case("GRU", num_layers=2, seq_len=5, batch=2, input_size=3,
                                hidden_size=4), np.random.default_rng(2))
    reference = run_scratch(module, data, dropout_masks=[np.full((5, 2, 4), 2.0)])
    module.zero_grad()
    module(data.x, data.hx, dropout_masks=[np.full((5, 2, 4), 2.0)])
    with pytest.raises(error, match=message):
        module.backward(*grads(data.grad_output, data.grad_state))
    assert all(np.all(g == 0) for g in module.grads.values())
    grad_input, grad_hx = module.backward(data.grad_output, data.grad_state)  # still possible
    ours = Result(reference.output, reference.state, grad_input, as_list(grad_hx),
                               {k: v.copy() for k, v in module.named_grads()})
    assert_results_close(ours, reference)


LSTM_BACKWARD = [
    ("grad_h_n not a pair", lambda g: g[0], TypeError, "grad_h_n must be a pair"),
    ("grad_c_n shape", lambda g: (g[0], g[1][:, :1]), ValueError,
     r"grad_h_n\[1\] has shape \(4, 1, 4\), expected \(4, 2, 4\)"),
    ("grad_h_n h shape", lambda g: (g[1], g[1]), ValueError,
     r"grad_h_n\[0\] has shape \(4, 2, 4\), expected \(4, 2, 2\)"),
]


@pytest.mark.parametrize(("grads", "error", "message"), [c[1:] for c in LSTM_BACKWARD],
                         ids=[c[0] for c in LSTM_BACKWARD])
def test_lstm_backward_refusals(grads, error, message):
    module = lstm()
    output, state = module(X, LSTM_HX)
    grad_state = (np.ones_like(state[0]), np.ones_like(state[1]))
    with pytest.raises(error, match=message):
        module.backward(np.ones_like(output), grads(grad_state))
    assert all(np.all(g == 0) for g in module.grads.values())
    module.backward(np.ones_like(output), grad_state)  # the forward is still there


# -- the cells --------------------------------------------------------------------------------
CELL_I, CELL_H = 3, 5


def cell(kind):
    return lambda: getattr(scratch, kind)(CELL_I, CELL_H, seed=0)


XB = x_of(2, CELL_I)
HB = x_of(2, CELL_H)
CELL_FORWARD = [
    ("input 3-D", cell("RNNCell"), lambda m: m(x_of(1, 2, CELL_I)), ValueError,
     "input.*1D or 2D, got 3D"),
    ("input 0-D", cell("GRUCell"), lambda m: m(np.array(1.0)), ValueError,
     "input.*got 0D"),
    ("input_size (torch's message)", cell("RNNCell"), lambda m: m(x_of(2, 4)), ValueError,
     "input has inconsistent input_size: got 4 expected 3"),
    ("input_size unbatched", cell("LSTMCell"), lambda m: m(x_of(2)), ValueError,
     "input has inconsistent input_size: got 2 expected 3"),
    ("input list", cell("GRUCell"), lambda m: m(XB.tolist()), TypeError, "input must be"),
    ("input dtype", cell("LSTMCell"), lambda m: m(XB.astype(np.float32)), TypeError,
     "input has dtype float32"),
    ("hx batch (torch's message)", cell("RNNCell"), lambda m: m(XB, x_of(3, CELL_H)),
     ValueError, "Input batch size 2 doesn't match hidden0 batch size 3.*hx"),
    ("hx hidden size", cell("GRUCell"), lambda m: m(XB, x_of(2, 4)), ValueError,
     "hidden0 has inconsistent hidden_size: got 4, expected 5.*hx"),
    ("hx 1-D for batched input", cell("GRUCell"), lambda m: m(XB, x_of(CELL_H)), ValueError,
     "hx must be 2-D"),
    ("hx 3-D", cell("RNNCell"), lambda m: m(XB, x_of(1, 2, CELL_H)), ValueError,
     "hx must be 2-D"),
    ("hx 2-D for unbatched input", cell("RNNCell"), lambda m: m(x_of(CELL_I), HB[:1]),
     ValueError, r"hx has shape \(1, 5\), expected \(5,\)"),
    ("hx dtype", cell("RNNCell"), lambda m: m(XB, HB.astype(np.float32)), TypeError,
     "hx has dtype float32"),
    ("hx list", cell("GRUCell"), lambda m: m(XB, HB.tolist()), TypeError, "hx must be"),
    ("LSTMCell hx not a pair", cell("LSTMCell"), lambda m: m(XB, HB), TypeError,
     r"hx must be a pair \(h, c\)"),
    ("LSTMCell c batch (torch's message)", cell("LSTMCell"),
     lambda m: m(XB, (HB, x_of(3, CELL_H))), ValueError,
     r"Input batch size 2 doesn't match hidden1 batch size 3.*hx\[1\]"),
    ("LSTMCell h hidden size", cell("LSTMCell"), lambda m: m(XB, (x_of(2, 4), HB)),
     ValueError, r"hidden0 has inconsistent hidden_size.*hx\[0\]"),
    ("LSTMCell c None", cell("LSTMCell"), lambda m: m(XB, (HB, None)), TypeError,
     r"hx\[1\] must be a numpy"),
]


@pytest.mark.parametrize(("build", "call", "error", "message"), [c[1:] for c in CELL_FORWARD],
                         ids=[c[0] for c in CELL_FORWARD])
def test_cell_forward_refusals_keep_the_last_forward(build, call, error, message):
    module = build()
    hx = (HB, HB * 0.5) if isinstance(module, scratch.LSTMCell) else HB
    first = module(XB, hx)
    with pytest.raises(error, match=message):
        call(module)
    grad_h = np.ones((2, CELL_H))
    after_refusal = module.backward(grad_h)  # goes back through the first forward
    grads = {name: g.copy() for name, g in module.named_grads()}
    module.zero_grad()
    assert np.array_equal(as_list(module(XB, hx))[0], as_list(first)[0])
    expected = module.backward(grad_h)
    assert np.array_equal(after_refusal[0], expected[0])
    for name, grad in module.grads.items():
        assert np.array_equal(grads[name], grad)


@pytest.mark.parametrize("kind", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_backward_before_forward_and_twice(kind):
    module = cell(kind)()
    with pytest.raises(scratch.CallOrderError, match="before forward"):
        module.backward(np.ones((2, CELL_H)))
    module(XB)
    module.backward(np.ones((2, CELL_H)))
    with pytest.raises(scratch.CallOrderError, match="already called"):
        module.backward(np.ones((2, CELL_H)))


CELL_BACKWARD = [
    ("grad_h shape", "RNNCell", lambda m: m.backward(np.ones((3, CELL_H))), ValueError,
     r"grad_h has shape \(3, 5\), expected \(2, 5\)"),
    ("grad_h unbatched shape", "GRUCell", lambda m: m.backward(np.ones(CELL_H)), ValueError,
     r"grad_h has shape \(5,\), expected \(2, 5\)"),
    ("grad_h dtype", "GRUCell", lambda m: m.backward(np.ones((2, CELL_H), np.float32)),
     TypeError, "grad_h has dtype float32"),
    ("grad_h list", "RNNCell", lambda m: m.backward([[1.0] * CELL_H] * 2), TypeError,
     "grad_h must be"),
    ("LSTMCell no gradient", "LSTMCell", lambda m: m.backward(), ValueError,
     "grad_h or grad_c"),
    ("LSTMCell grad_c shape", "LSTMCell",
     lambda m: m.backward(np.ones((2, CELL_H)), np.ones((2, 4))), ValueError,
     r"grad_c has shape \(2, 4\), expected \(2, 5\)"),
    ("LSTMCell grad_h dtype", "LSTMCell",
     lambda m: m.backward(np.ones((2, CELL_H), np.float32), None), TypeError,
     "grad_h has dtype"),
]


@pytest.mark.parametrize(("kind", "call", "error", "message"), [c[1:] for c in CELL_BACKWARD],
                         ids=[c[0] for c in CELL_BACKWARD])
def test_cell_backward_refusals_leave_grads_and_cache_untouched(kind, call, error, message):
    module = cell(kind)()
    hx = (HB, HB * 0.5) if kind == "LSTMCell" else HB
    module(XB, hx)
    with pytest.raises(error, match=message):
        call(module)
    assert all(np.all(g == 0) for g in module.grads.values())
    grad_input, grad_hx = module.backward(np.ones((2, CELL_H)))
    assert grad_input.shape == XB.shape and np.any(grad_input != 0)
    assert all(np.any(g != 0) for g in module.grads.values())
