"""The recurrent layers written out in torch, one equation a line, differentiated by autograd.

This is a second torch-side reading of the math of torch.nn.RNN, LSTM and GRU, with no fused
kernel in between: a loop over layers, directions and time steps, each step the cell's
equations on tensors. It exists for what torch.nn cannot do:

* take *explicit* dropout masks between layers (torch.nn draws its own, which no other
  implementation can reproduce), so that a NumPy model's dropout can be checked exactly;
* run the same step-by-step math on any device torch supports (a GPU check that does not go
  through cuDNN's fused layer).

The configuration is read from the state dict itself (torch's keys and shapes): the number of
layers from the ``weight_ih_l{k}`` keys, bidirectional from ``*_reverse``, bias from
``bias_ih_l0``, the projection from ``weight_hr_l0``, hidden_size from ``weight_hh_l0``.

Equations (row vectors: x is (B, I), h is (B, H_out)), with torch's chunk orders:

    RNN:  h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh),  act = tanh or relu
    LSTM: i | f | g | o = x W_ih^T + b_ih + h W_hh^T + b_hh
          c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
          with a projection: h' <- h' W_hr^T
    GRU:  x_proj = x W_ih^T + b_ih, gh = h W_hh^T + b_hh, each split r | z | n
          r = sigmoid(x_proj_r + gh_r); z = sigmoid(x_proj_z + gh_z); n = tanh(x_proj_n + r * gh_n)
          h' = (1 - z) * n + z * h

Variable lengths are a mask: where step t is past a sequence's length its state passes
through unchanged and its output is zero, so the reverse direction starts at each sequence's
own last valid step (what pack_padded_sequence gives torch.nn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from scratch import GATES

MODES = tuple(GATES)


# -- one step of each cell ---------------------------------------------------------------------
def rnn_step(x, h, W_ih, W_hh, b_ih, b_hh, nonlinearity):
    """x: (B, I), h: (B, H) -> h' (B, H)."""
    pre = x @ W_ih.T + h @ W_hh.T  # (B, H)
    if b_ih is not None:
        pre = pre + b_ih + b_hh
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh, W_hr, values=None):
    """x: (B, I), h: (B, H_out), c: (B, H) -> h' (B, H_out), c' (B, H). values: a dict that
    receives the gates i, f, g, o, tanh_c and h_full (before the projection)."""
    gates = x @ W_ih.T + h @ W_hh.T  # (B, 4H)
    if b_ih is not None:
        gates = gates + b_ih + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H), torch's order i, f, g, o
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g  # (B, H)
    tanh_c = torch.tanh(c_new)
    h_full = o * tanh_c  # (B, H)
    h_new = h_full if W_hr is None else h_full @ W_hr.T  # (B, P) with a projection
    if values is not None:
        values.update(i=i, f=f, g=g, o=o, tanh_c=tanh_c, h_full=h_full)
    return h_new, c_new


def gru_step(x, h, W_ih, W_hh, b_ih, b_hh, values=None):
    """x: (B, I), h: (B, H) -> h' (B, H). The reset gate multiplies h W_hn^T + b_hn.
    values: a dict that receives r, z, n and gh_n."""
    x_proj = x @ W_ih.T  # (B, 3H)
    gh = h @ W_hh.T  # (B, 3H)
    if b_ih is not None:
        x_proj = x_proj + b_ih
        gh = gh + b_hh
    x_proj_r, x_proj_z, x_proj_n = x_proj.chunk(3, dim=-1)
    gh_r, gh_z, gh_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(x_proj_r + gh_r)  # (B, H)
    z = torch.sigmoid(x_proj_z + gh_z)  # (B, H)
    n = torch.tanh(x_proj_n + r * gh_n)  # (B, H)
    if values is not None:
        values.update(r=r, z=z, n=n, gh_n=gh_n)
    return (1 - z) * n + z * h


# -- configuration from the state dict ----------------------------------------------------------
def read_config(mode: str, params: Mapping[str, torch.Tensor]) -> dict:
    """num_layers, num_directions, hidden_size, proj_size and bias, read from the keys."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if "weight_hh_l0" not in params:
        raise ValueError(f"params has no 'weight_hh_l0' (keys: {sorted(params)})")
    num_layers = 0
    while f"weight_ih_l{num_layers}" in params:
        num_layers += 1
    gate_size = params["weight_hh_l0"].shape[0]
    if gate_size % GATES[mode]:
        raise ValueError(
            f"weight_hh_l0 has {gate_size} rows, not a multiple of {GATES[mode]} "
            f"gates as {mode} needs"
        )
    proj = params.get("weight_hr_l0")
    if proj is not None and mode != "LSTM":
        raise ValueError(f"weight_hr_l0 (a projection) is given, but only LSTM has one, not {mode}")
    return {
        "num_layers": num_layers,
        "num_directions": 2 if "weight_ih_l0_reverse" in params else 1,
        "hidden_size": gate_size // GATES[mode],
        "proj_size": 0 if proj is None else proj.shape[0],
        "bias": "bias_ih_l0" in params,
    }


def _direction(mode, params, suffix, x, h0, c0, valid, reverse, steps=None):
    """One direction of one layer over time. x: (T, B, I); valid: (T, B, 1) bool or None.
    steps: a list of T that receives, for each step t, its h_prev, c_prev, new h and the
    cell's own values (lstm_step's, gru_step's).

    Returns output (T, B, H_out), h_n (B, H_out), c_n (B, H) or None.
    """
    W_ih, W_hh = params["weight_ih" + suffix], params["weight_hh" + suffix]
    b_ih, b_hh = params.get("bias_ih" + suffix), params.get("bias_hh" + suffix)
    W_hr = params.get("weight_hr" + suffix)
    T = x.shape[0]
    outputs: list = [None] * T
    h, c = h0, c0
    for t in reversed(range(T)) if reverse else range(T):
        values: dict = {"h_prev": h, "c_prev": c}
        if mode == "LSTM":
            h_new, c_new = lstm_step(x[t], h, c, W_ih, W_hh, b_ih, b_hh, W_hr, values)
        elif mode == "GRU":
            h_new, c_new = gru_step(x[t], h, W_ih, W_hh, b_ih, b_hh, values), None
        else:
            nonlinearity = "tanh" if mode == "RNN_TANH" else "relu"
            h_new, c_new = rnn_step(x[t], h, W_ih, W_hh, b_ih, b_hh, nonlinearity), None
        if steps is not None:
            steps[t] = dict(values, h=h_new)
        if valid is None:
            h, c = h_new, c_new
            outputs[t] = h_new
        else:  # a step past the sequence's length leaves the state as it was
            h = torch.where(valid[t], h_new, h)
            c = None if c is None else torch.where(valid[t], c_new, c)
            outputs[t] = torch.where(valid[t], h_new, torch.zeros_like(h_new))
    return torch.stack(outputs), h, c


# -- the whole layer stack -----------------------------------------------------------------------
def forward(
    mode: str,
    params: Mapping[str, torch.Tensor],
    input: torch.Tensor,
    hx=None,
    lengths: Sequence[int] | None = None,
    *,
    batch_first: bool = False,
    dropout_masks: Sequence[torch.Tensor] | None = None,
):
    """torch.nn.RNN / LSTM / GRU's forward, written out step by step.

    mode:    "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"
    params:  torch's state dict (names and shapes of nn.RNN / LSTM / GRU); gradients flow to
             whichever tensors require them
    input:   (T, B, I), (B, T, I) with batch_first, or unbatched (T, I)
    hx:      h0 (L*D, B, H_out) ((L*D, H_out) unbatched), for LSTM a pair (h0, c0) with c0
             (L*D, B, H); zeros when None
    lengths: one int per sequence, 1..T (batched input only): the result of packing with
             pack_padded_sequence(..., enforce_sorted=False) and padding back to T
    dropout_masks: num_layers - 1 tensors shaped like the output (input's layout), each
             multiplying the output of a layer that feeds another layer; None for no dropout
    Returns (output, h_n), h_n a pair (h_n, c_n) for LSTM, as torch.nn does.
    """
    config = read_config(mode, params)
    L, D = config["num_layers"], config["num_directions"]
    H = config["hidden_size"]
    H_out = config["proj_size"] or H

    if input.dim() not in (2, 3):
        raise ValueError(f"input must be 2-D or 3-D, got shape {tuple(input.shape)}")
    batched = input.dim() == 3
    x = input if not batched else (input.transpose(0, 1) if batch_first else input)
    if not batched:
        x = x.unsqueeze(1)
    T, B, _ = x.shape

    h0, c0 = (hx if mode == "LSTM" else (hx, None)) if hx is not None else (None, None)
    if h0 is None:
        h0 = x.new_zeros(L * D, B, H_out)
        c0 = x.new_zeros(L * D, B, H) if mode == "LSTM" else None
    else:
        for name, state, width in (("h0", h0, H_out), ("c0", c0, H)):
            expected = (L * D, B, width) if batched else (L * D, width)
            if state is not None and tuple(state.shape) != expected:
                raise ValueError(f"{name} has shape {tuple(state.shape)}, expected {expected}")
        if not batched:
            h0 = h0.unsqueeze(1)
            c0 = None if c0 is None else c0.unsqueeze(1)

    valid = None
    if lengths is not None:
        if not batched:
            raise ValueError("lengths is only accepted with batched (3-D) input")
        lengths_t = torch.as_tensor(list(lengths), device=x.device)
        if lengths_t.shape != (B,) or lengths_t.min() < 1 or lengths_t.max() > T:
            raise ValueError(f"lengths must be B = {B} ints in 1..{T}, got {list(lengths)}")
        valid = (torch.arange(T, device=x.device)[:, None] < lengths_t[None, :])[:, :, None]

    if dropout_masks is not None and len(dropout_masks) != L - 1:
        raise ValueError(
            f"dropout_masks must hold num_layers - 1 = {L - 1} tensors, got {len(dropout_masks)}"
        )

    h_n, c_n = [], []
    layer_input = x
    for layer in range(L):
        outputs = []
        for direction in range(D):
            row = layer * D + direction
            suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
            out, h_last, c_last = _direction(
                mode, params, suffix, layer_input, h0[row], None if c0 is None else c0[row],
                valid, reverse=direction == 1,
            )
            outputs.append(out)
            h_n.append(h_last)
            c_n.append(c_last)
        layer_output = torch.cat(outputs, dim=-1)  # (T, B, D*H_out)
        if dropout_masks is not None and layer < L - 1:
            mask = dropout_masks[layer]
            mask = mask.unsqueeze(1) if not batched else (
                mask.transpose(0, 1) if batch_first else mask)
            if tuple(mask.shape) != tuple(layer_output.shape):
                raise ValueError(
                    f"dropout_masks[{layer}] has shape {tuple(dropout_masks[layer].shape)}, "
                    f"expected the output's shape"
                )
            layer_output = layer_output * mask
        layer_input = layer_output

    output = layer_input
    h_n_t = torch.stack(h_n)  # (L*D, B, H_out)
    if batched and batch_first:
        output = output.transpose(0, 1)
    if not batched:
        output, h_n_t = output.squeeze(1), h_n_t.squeeze(1)
    if mode != "LSTM":
        return output, h_n_t
    c_n_t = torch.stack(c_n)  # (L*D, B, H)
    return output, (h_n_t, c_n_t if batched else c_n_t.squeeze(1))
