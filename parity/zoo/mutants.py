"""The zoo's members: scratch with one realistic bug each, as structural patches.

Each patch names a file of the scratch/ package, a function in it (its qualified name, e.g.
``RNNBase.forward``), the statement or expression it replaces and the new code. The old code is
matched by its syntax tree, not by its text: comments, spacing, line breaks, parentheses and
quote marks do not matter, so the members survive edits of scratch/ that keep the code the
same. The old code must occur exactly once in the function. A statement is replaced by the new
statements ("" deletes it); an expression by the new expression. Where a student would have
written the bug consistently in the forward and the backward pass, both are patched.
"""

from __future__ import annotations

from dataclasses import dataclass

from parity.spec import ALL_MODES, RNN_MODES


@dataclass(frozen=True)
class Patch:
    file: str  # relative to the scratch/ package, e.g. "functional/gru_cell.py"
    function: str  # qualified name of the function to change, e.g. "RNNBase.backward"
    old: str  # one statement or expression, matched by its syntax tree, once in the function
    new: str  # what replaces it: statements for a statement ("" deletes it), or an expression
    # for a helper that is no study function (parity.spec), the study functions that call it
    callers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mutant:
    name: str
    modes: tuple[str, ...]  # the modes of layer it shows in
    diverges: tuple[str, ...]  # tensor names (prefixes) one of which must be reported
    description: str  # the bug, as a student would have made it
    breaks: str  # what a correct harness sees diverge
    patches: tuple[Patch, ...]


GATED = ("LSTM", "GRU")

RNN, LSTM, GRU = "functional/rnn_cell.py", "functional/lstm_cell.py", "functional/gru_cell.py"
SEQ, LAYER, ACT = "sequence.py", "recurrent.py", "activations.py"

MUTANTS: list[Mutant] = [
    Mutant(
        "gru_textbook", ("GRU",), ("output", "h_n"),
        "the textbook GRU (Cho et al., d2l): the reset gate multiplies h_prev before its "
        "product with W_hn, instead of torch's r * (h_prev W_hn^T + b_hn)",
        "GRU output and h_n, and every GRU gradient",
        (Patch(GRU, "gru_step_forward",
               "n = tanh(x_proj_n + r * gh_n)",
               "n = tanh(x_proj_n + (r * h_prev) @ np.split(W_hh, 3)[2].T\n"
               "         + (0.0 if b_hh is None else np.split(b_hh, 3)[2]))"),)),
    Mutant(
        "lstm_gate_order_ifog", ("LSTM",), ("output", "h_n"),
        "LSTM gates read in CS231n's order i, f, o, g instead of torch's i, f, g, o "
        "(consistently, forward and backward)",
        "LSTM output, h_n, c_n and every LSTM gradient",
        (Patch(LSTM, "lstm_step_forward",
               "gates_i, gates_f, gates_g, gates_o = np.split(gates, 4, axis=-1)",
               "gates_i, gates_f, gates_o, gates_g = np.split(gates, 4, axis=-1)"),
         Patch(LSTM, "lstm_step_backward",
               "np.hstack([dgates_i, dgates_f, dgates_g, dgates_o])",
               "np.hstack([dgates_i, dgates_f, dgates_o, dgates_g])"))),
    Mutant(
        "rnn_dh_not_carried", RNN_MODES, ("grad",),
        "RNN: the hidden-state gradient is not carried to the previous step "
        "(dh_prev = 0: back-propagation through one step only)",
        "RNN gradients of the input (earlier steps), of h0 and of the weights",
        (Patch(RNN, "rnn_step_backward", "dh_prev = dpre @ W_hh",
               "dh_prev = np.zeros_like(h_prev)"),)),
    Mutant(
        "reverse_starts_at_T", ALL_MODES, ("output", "h_n"),
        "the reverse direction starts at the padded end T of every sequence instead of each "
        "sequence's own last valid step (it runs through the padding)",
        "with variable lengths: the reverse half of output, its h_n, and their gradients",
        (Patch(SEQ, "direction_forward", "np.where(valid[t], h_new, h)",
               "h_new if reverse else np.where(valid[t], h_new, h)"),
         Patch(SEQ, "direction_forward", "None if c is None else np.where(valid[t], c_new, c)",
               "c_new if reverse else None if c is None else np.where(valid[t], c_new, c)"),
         Patch(SEQ, "direction_backward", "np.where(valid[t], dh, 0.0)",
               "dh if reverse else np.where(valid[t], dh, 0.0)"),
         Patch(SEQ, "direction_backward", "None if dc is None else np.where(valid[t], dc, 0.0)",
               "dc if reverse else None if dc is None else np.where(valid[t], dc, 0.0)"),
         Patch(SEQ, "direction_backward", "np.where(valid[t], dh_prev, dh_next)",
               "dh_prev if reverse else np.where(valid[t], dh_prev, dh_next)"),
         Patch(SEQ, "direction_backward",
               "None if dc is None else np.where(valid[t], dc_prev, dc_next)",
               "dc_prev if reverse else None if dc is None else "
               "np.where(valid[t], dc_prev, dc_next)"))),
    Mutant(
        "h_n_last_padded_step", ALL_MODES, ("h_n",),
        "h_n taken from the output at the last time step T (zero padding for a shorter "
        "sequence) instead of each sequence's own last valid step",
        "with variable lengths: h_n of the forward direction and the gradients it feeds",
        (Patch(SEQ, "direction_forward",
               "return output, h, c, DirectionCache(mode, steps, valid, reverse)",
               "return (output, output[0] if reverse else output[-1], c,\n"
               "        DirectionCache(mode, steps, valid, reverse))"),)),
    Mutant(
        "gru_one_bias_grad", ("GRU",), ("grad[bias_hh",),
        "GRU: b_hh given b_ih's gradient (as for RNN and LSTM), but in the n block torch's "
        "dL/db_hn carries the factor r",
        "GRU grad of bias_hh",
        (Patch(SEQ, "direction_backward", "dgh.sum(axis=(0, 1))",
               "dx_proj.sum(axis=(0, 1))"),)),
    Mutant(
        "weight_hr_grad_missing", ("LSTM",), ("grad[weight_hr",),
        "LSTM with proj_size: the projection weight's gradient is never accumulated",
        "LSTM grad of weight_hr (stays zero)",
        (Patch(LAYER, "RNNBase._accumulate",
               'if self.proj_size:\n    grads[f"weight_hr{sfx}"] += rec.dW_hr', ""),)),
    Mutant(
        "dropout_after_last_layer", ALL_MODES, ("output",),
        "dropout also applied to the last layer's output (torch applies it only between "
        "layers)",
        "in train mode with dropout: output and every gradient",
        (Patch(LAYER, "RNNBase.forward", "use_dropout and layer < self.num_layers - 1",
               "use_dropout"),
         Patch(LAYER, "RNNBase._dropout_mask", "masks is not None",
               "masks is not None and layer < len(masks)", ("RNNBase.forward",)))),
    Mutant(
        "relu_grad_at_zero", ("RNN_RELU",), ("grad",),
        "relu's derivative written from its output as (r >= 0): 1 at zero and, since the "
        "output is never negative, everywhere",
        "RNN (relu) gradients",
        (Patch(ACT, "relu_grad", "return (r > 0).astype(r.dtype)",
               "return (r >= 0).astype(r.dtype)", ("rnn_step_backward",)),)),
    Mutant(
        "relu_grad_one_at_zero", ("RNN_RELU",), ("grad_input",),
        "RNN (relu): the step keeps the pre-activation and takes relu's derivative as "
        "(pre >= 0), 1 at exactly zero where torch takes relu'(0) = 0; the same as torch "
        "everywhere else",
        "RNN (relu) with a pre-activation of exactly zero (zero input rows, no bias, no hx): "
        "the gradient of those input rows",
        (Patch(RNN, "rnn_step_forward", "RNNStepCache(h_prev, h, nonlinearity)",
               'RNNStepCache(h_prev, pre if nonlinearity == "relu" else h, nonlinearity)'),
         Patch(RNN, "rnn_step_backward", "dh * act_grad(h)",
               'dh * ((h >= 0).astype(h.dtype) if nonlinearity == "relu" else act_grad(h))'))),
    Mutant(
        "bias_grad_wrong_axis", ALL_MODES, ("grad[bias_ih",),
        "b_ih's gradient summed over the batch axis only, at the last time step: the sum "
        "over the time axis is missing (one time step hides it)",
        "grad of bias_ih",
        (Patch(LAYER, "RNNBase._accumulate", "dx_proj.sum(axis=(0, 1))",
               "dx_proj[-1].sum(axis=0)"),)),
    Mutant(
        "bias_grad_batch_mean", ALL_MODES, ("grad[bias_ih",),
        "b_ih's gradient averaged over the batch instead of summed (a batch of one hides it)",
        "grad of bias_ih",
        (Patch(LAYER, "RNNBase._accumulate", "dx_proj.sum(axis=(0, 1))",
               "dx_proj.sum(axis=0).mean(axis=0)"),)),
    Mutant(
        "layer_input_grad_dropped", ALL_MODES, ("grad",),
        "the gradient of a layer's input is not passed down to the layer below: lower layers "
        "learn only from their own h_n",
        "with two or more layers: grad of the input and of the lower layers' parameters",
        (Patch(LAYER, "RNNBase.backward", "dlayer_output = dlayer_input",
               "dlayer_output = dlayer_input if layer == 0 else np.zeros_like(dlayer_input)"),)),
    Mutant(
        "state_grad_top_layer_only", ALL_MODES, ("grad",),
        "the upstream gradient of h_n (and c_n) is given to the top layer only: the state "
        "gradient is dropped at the layer boundaries",
        "with two or more layers: gradients of the lower layers' parameters, of h0 and input",
        (Patch(LAYER, "RNNBase.backward", "dh_n[row]",
               "dh_n[row] * (layer == self.num_layers - 1)"),
         Patch(LAYER, "RNNBase.backward", "None if dc_n is None else dc_n[row]",
               "None if dc_n is None else dc_n[row] * (layer == self.num_layers - 1)"))),
    Mutant(
        "grads_overwritten", ALL_MODES, ("grad[weight_hh",),
        "weight_hh's gradient assigned instead of added: a second backward() without "
        "zero_grad() loses the first (torch accumulates .grad)",
        "grad of weight_hh after two backward() calls",
        (Patch(LAYER, "RNNBase._accumulate", 'grads[f"weight_hh{sfx}"] += rec.dW_hh',
               'grads[f"weight_hh{sfx}"][...] = rec.dW_hh'),)),
    Mutant(
        "rnn_transposed_W_hh", RNN_MODES, ("output", "h_n"),
        "RNN: W_hh used transposed (h_prev W_hh instead of h_prev W_hh^T), consistently "
        "forward and backward; its square shape (H, H) hides the mistake from every shape "
        "check",
        "RNN output, h_n and every RNN gradient",
        (Patch(RNN, "rnn_step_forward", "h_prev @ W_hh.T", "h_prev @ W_hh"),
         Patch(RNN, "rnn_step_backward", "dpre @ W_hh", "dpre @ W_hh.T"))),
    Mutant(
        "lstm_forget_bias_plus_one", ("LSTM",), ("output", "h_n"),
        "LSTM: +1 added to the forget gate's pre-activation (Keras's unit_forget_bias), "
        "which torch does not do",
        "LSTM output, h_n, c_n and every LSTM gradient",
        (Patch(LSTM, "lstm_step_forward", "sigmoid(gates_f)", "sigmoid(gates_f + 1.0)"),)),
    Mutant(
        "lstm_dc_prev_without_f", ("LSTM",), ("grad",),
        "LSTM: the cell gradient passed to the previous step is dc, not dc * f",
        "LSTM gradients through time (c0, input, weights)",
        (Patch(LSTM, "lstm_step_backward", "dc_prev = dc * f", "dc_prev = dc"),)),
    Mutant(
        "lstm_tanh_c_grad_missing", ("LSTM",), ("grad",),
        "LSTM: the derivative of tanh(c) left out of dL/dc (dc += dh * o)",
        "LSTM gradients",
        (Patch(LSTM, "lstm_step_backward", "dh_full * o * tanh_grad(tanh_c)", "dh_full * o"),)),
    Mutant(
        "sigmoid_grad_of_output", GATED, ("grad",),
        "sigmoid's derivative applied to the cached output as if it were the input: "
        "sigmoid(s) * (1 - sigmoid(s)) with s = sigmoid(x)",
        "LSTM and GRU gradients",
        (Patch(ACT, "sigmoid_grad", "return s * (1.0 - s)",
               "return sigmoid(s) * (1.0 - sigmoid(s))",
               ("lstm_step_backward", "gru_step_backward")),)),
    Mutant(
        "gru_update_gate_swapped", ("GRU",), ("output", "h_n"),
        "GRU: h = z * n + (1 - z) * h_prev (the other convention) instead of torch's "
        "(1 - z) * n + z * h_prev, consistently forward and backward",
        "GRU output, h_n and every GRU gradient",
        (Patch(GRU, "gru_step_forward", "(1.0 - z) * n + z * h_prev",
               "z * n + (1.0 - z) * h_prev"),
         Patch(GRU, "gru_step_backward", "dn = dh * (1.0 - z)", "dn = dh * z"),
         Patch(GRU, "gru_step_backward", "dz = dh * (h_prev - n)", "dz = dh * (n - h_prev)"),
         Patch(GRU, "gru_step_backward", "dh * z + dgh @ W_hh",
               "dh * (1.0 - z) + dgh @ W_hh"))),
    Mutant(
        "gru_dh_prev_direct_path_only", ("GRU",), ("grad",),
        "GRU: dL/dh_prev keeps only the direct path dh * z and forgets the path through the "
        "gates (dgh W_hh)",
        "GRU gradients through time",
        (Patch(GRU, "gru_step_backward", "dh * z + dgh @ W_hh", "dh * z"),)),
    Mutant(
        "reverse_output_not_flipped", ALL_MODES, ("output",),
        "the reverse direction's outputs stored in the order they were computed (T-1 first) "
        "instead of in time order",
        "bidirectional: the reverse half of output, and every gradient it feeds",
        (Patch(LAYER, "RNNBase.forward", "np.concatenate(outputs, axis=-1)",
               "outputs[0] if D == 1 else "
               "np.concatenate([outputs[0], outputs[1][::-1]], axis=-1)"),)),
    Mutant(
        "state_rows_direction_major", ALL_MODES, ("h_n", "c_n", "output", "grad_h0"),
        "h0/h_n rows indexed direction-major (direction * num_layers + layer) instead of "
        "torch's layer * num_directions + direction",
        "with two or more bidirectional layers: h_n, c_n and their gradients, grad_h0",
        (Patch(LAYER, "RNNBase.forward", "row = layer * D + direction",
               "row = direction * self.num_layers + layer"),
         Patch(LAYER, "RNNBase.backward", "row = layer * D + direction",
               "row = direction * self.num_layers + layer"))),
    Mutant(
        "dropout_mask_not_in_backward", ALL_MODES, ("grad",),
        "the dropout mask applied in the forward pass but not to the gradient in the "
        "backward pass",
        "in train mode with dropout: gradients of the lower layers and of the input",
        (Patch(LAYER, "RNNBase.backward",
               "if layer_cache.dropout_mask is not None:\n"
               "    dlayer_output = dlayer_output * layer_cache.dropout_mask", ""),)),
    Mutant(
        "padded_output_repeats_state", ALL_MODES, ("output",),
        "with variable lengths, the output at padded steps repeats the last valid state "
        "instead of being zero",
        "with variable lengths: output at padded steps",
        (Patch(SEQ, "direction_forward", "output = np.where(valid, output, 0.0)",
               "output = output.copy()"),)),
    Mutant(
        "b_ih_forgotten", ALL_MODES, ("output", "h_n"),
        "the input bias b_ih never added in the forward pass (only b_hh is)",
        "with bias: output, h_n and every gradient",
        (Patch(LAYER, "RNNBase.forward", "if b_ih is not None:\n    x_proj = x_proj + b_ih",
               ""),)),
]
