"""The multi-layer, optionally bidirectional recurrent layers: RNN, LSTM and GRU.

Their constructor arguments, defaults, refusals, parameter names and shapes are torch.nn's;
``backward`` is explicit. The math of one step lives in ``scratch.functional``, the loop over
time in ``scratch.sequence``; this file stacks layers and directions, handles layouts
(batch_first, unbatched input), variable lengths and dropout between layers.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import NamedTuple

import numpy as np

from scratch._checks import check_array, check_bool, check_positive_int, check_shape
from scratch.module import Module, check_dtype
from scratch.sequence import (
    DirectionCache,
    DirectionWeights,
    direction_backward,
    direction_forward,
    new_storage,
)

GATES_PER_MODE = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class LayerCache(NamedTuple):
    layer_input: np.ndarray  # (T, B, I_layer), time-major
    directions: list[DirectionCache]
    dropout_mask: np.ndarray | None  # (T, B, D*H_out) applied to this layer's output


class ForwardCache(NamedTuple):
    batched: bool
    hx_given: bool
    input_shape: tuple
    output_shape: tuple
    h_n_shape: tuple
    layers: list[LayerCache]


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU (torch.nn.RNNBase's role)."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        dtype=np.float64,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if mode not in GATES_PER_MODE:
            raise ValueError(f"mode must be one of {sorted(GATES_PER_MODE)}, got {mode!r}")
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_positive_int("proj_size", proj_size, allow_zero=True)
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} "
                f"and hidden_size={hidden_size}"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number):
            raise TypeError(f"dropout must be a number, got {type(dropout).__name__}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability "
                f"of an element being zeroed, got {dropout}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        for flag_name, flag in (("bias", bias), ("batch_first", batch_first),
                                ("bidirectional", bidirectional)):
            check_bool(flag_name, flag)

        self.mode = mode
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = int(proj_size)
        self.dtype = check_dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.last_dropout_masks: list[np.ndarray] | None = None
        self._workspace: dict = {}  # see _work_arrays

        gate_size = GATES_PER_MODE[mode] * hidden_size
        h_out = self.proj_size or hidden_size
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                layer_input_size = input_size if layer == 0 else h_out * self.num_directions
                sfx = self._suffix(layer, direction)
                self.register_parameter(f"weight_ih{sfx}", self._empty(gate_size, layer_input_size))
                self.register_parameter(f"weight_hh{sfx}", self._empty(gate_size, h_out))
                if bias:
                    self.register_parameter(f"bias_ih{sfx}", self._empty(gate_size))
                    self.register_parameter(f"bias_hh{sfx}", self._empty(gate_size))
                if self.proj_size:
                    self.register_parameter(f"weight_hr{sfx}", self._empty(proj_size, hidden_size))
        self.reset_parameters()

    # -- construction helpers ---------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_hidden_size(self) -> int:
        """H_out: the width of h (proj_size when there is a projection, else hidden_size)."""
        return self.proj_size or self.hidden_size

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def _empty(self, *shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)

    def reset_parameters(self) -> None:
        """torch's init: every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)),
        drawn in registration order from the module's Generator (``self.rng``)."""
        self.fill_uniform_(self.rng, 1.0 / math.sqrt(self.hidden_size))

    def _direction_weights(self, layer: int, direction: int):
        sfx = self._suffix(layer, direction)
        p = self._parameters
        W_ih = p[f"weight_ih{sfx}"]
        b_ih = p.get(f"bias_ih{sfx}")
        recurrent = DirectionWeights(p[f"weight_hh{sfx}"], p.get(f"bias_hh{sfx}"),
                                     p.get(f"weight_hr{sfx}"))
        return W_ih, b_ih, recurrent

    def _work_arrays(self, layer: int, direction: int, T: int, B: int):
        """x_proj's array (T*B, G*H) and the Storage of one direction, kept between calls.

        A training loop calls forward with the same sizes again and again. Writing into the
        arrays of the last call spares the operating system from mapping fresh zeroed pages in
        every time, which at small sizes costs as much as the arithmetic. The module thus
        holds one call's work arrays between calls; a call of other sizes replaces them.
        """
        if self._workspace.get("sizes") != (T, B):
            self._workspace = {"sizes": (T, B)}
        if (layer, direction) not in self._workspace:
            H, H_out = self.hidden_size, self.output_hidden_size
            x_proj = np.empty((T * B, GATES_PER_MODE[self.mode] * H), dtype=self.dtype)
            storage = new_storage(self.mode, T, B, H, H_out, self.dtype, self.proj_size > 0)
            self._workspace[layer, direction] = (x_proj, storage)
        return self._workspace[layer, direction]

    def __repr__(self) -> str:
        args = [str(self.input_size), str(self.hidden_size)]
        if self.num_layers != 1:
            args.append(f"num_layers={self.num_layers}")
        if self.mode == "RNN_RELU":
            args.append("nonlinearity='relu'")
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, name) != default:
                args.append(f"{name}={getattr(self, name)}")
        if self.dtype != np.float64:
            args.append(f"dtype={self.dtype}")
        return f"{type(self).__name__}({', '.join(args)})"

    # -- input checks ---------------------------------------------------------------------
    def _check_forward_args(self, input, hx, lengths, dropout_masks):
        """Check everything and return it time-major and batched: x (T, B, I), h0, c0,
        lengths (B,) or None, masks (T, B, D*H_out) or None."""
        name = type(self).__name__
        x = check_array("input", input, self.dtype)
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{name}: input must be 2-D (unbatched, (T, input_size)) or 3-D "
                f"((T, B, input_size), or (B, T, input_size) with batch_first), got "
                f"{x.ndim}-D of shape {x.shape}"
            )
        batched = x.ndim == 3
        if not batched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(
                f"input.shape[-1] must be equal to input_size: expected {self.input_size}, "
                f"got {I} (input of shape {input.shape})"
            )
        if T == 0:
            raise ValueError(f"input must hold at least one time step, got shape {input.shape}")

        rows = self.num_layers * self.num_directions
        h_shape = (rows, B, self.output_hidden_size)
        c_shape = (rows, B, self.hidden_size)
        h0, c0 = self._check_state("hx", hx, h_shape, c_shape, batched)
        if hx is not None and (h0 is None or (self.mode == "LSTM" and c0 is None)):
            raise TypeError("hx must hold both initial states (h0, c0) for LSTM, got None in it")
        if h0 is None:
            h0 = np.zeros(h_shape, dtype=self.dtype)
            c0 = np.zeros(c_shape, dtype=self.dtype) if self.mode == "LSTM" else None

        if lengths is not None:
            lengths = self._check_lengths(lengths, batched, T, B)

        masks = None
        if dropout_masks is not None:
            masks = self._check_masks(dropout_masks, batched, T, B)
        return x, h0, c0, lengths, masks, batched, hx is not None

    def _check_state(self, name, state, h_shape, c_shape, batched):
        """hx (or grad_h_n) as given by the user -> batched (h, c) or (None, None)."""
        if state is None:
            return None, None
        if self.mode == "LSTM":
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"{name} must be a pair (h, c) for LSTM, got "
                                f"{type(state).__name__}")
            parts = [(f"{name}[0]", state[0], h_shape), (f"{name}[1]", state[1], c_shape)]
        else:
            parts = [(name, state, h_shape)]
        out = []
        for part_name, value, shape in parts:
            if value is None:
                out.append(None)
                continue
            value = check_array(part_name, value, self.dtype)
            expected = shape if batched else (shape[0], shape[2])
            check_shape(part_name, value, expected)
            out.append(value if batched else value[:, None, :])
        if self.mode != "LSTM":
            out.append(None)
        return out[0], out[1]

    def _check_lengths(self, lengths, batched, T, B) -> np.ndarray:
        if not batched:
            raise ValueError("lengths is only accepted with batched (3-D) input")
        arr = np.asarray(lengths)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise TypeError(
                f"lengths must be a 1-D sequence of ints, got {arr.dtype} of shape {arr.shape}"
            )
        if arr.shape[0] != B:
            raise ValueError(f"lengths must hold one length per sequence: expected {B}, "
                             f"got {arr.shape[0]}")
        if arr.size and (arr.min() < 1 or arr.max() > T):
            raise ValueError(
                f"every length must be in 1..{T} (the padded sequence length), got "
                f"{arr.tolist()}"
            )
        return arr.astype(np.int64)

    def _check_masks(self, masks, batched, T, B):
        if not self.training:
            raise ValueError("dropout_masks were given, but the module is in eval mode, "
                             "where no dropout is applied: call train() first")
        if not isinstance(masks, (list, tuple)) or len(masks) != self.num_layers - 1:
            raise ValueError(
                f"dropout_masks must be a list of num_layers - 1 = {self.num_layers - 1} "
                f"arrays, one per layer output that feeds another layer"
            )
        width = self.num_directions * self.output_hidden_size
        out = []
        for k, mask in enumerate(masks):
            mask = check_array(f"dropout_masks[{k}]", mask, self.dtype)
            check_shape(f"dropout_masks[{k}]", mask, self._user_layout_shape(T, B, width, batched))
            out.append(self._to_time_major(mask, batched))
        return out

    def _user_layout_shape(self, T, B, width, batched):
        if not batched:
            return (T, width)
        return (B, T, width) if self.batch_first else (T, B, width)

    def _to_time_major(self, array, batched):
        if not batched:
            return array[:, None, :]
        return array.transpose(1, 0, 2) if self.batch_first else array

    def _to_user_layout(self, array, batched):
        if not batched:
            return array[:, 0, :]
        return np.ascontiguousarray(array.transpose(1, 0, 2)) if self.batch_first else array

    def _draw_dropout_mask(self, shape):
        """Inverted dropout: keep with probability 1 - p and scale by 1 / (1 - p)."""
        if self.dropout == 1.0:
            return np.zeros(shape, dtype=self.dtype)
        keep = self.rng.random(shape) >= self.dropout
        return (keep / (1.0 - self.dropout)).astype(self.dtype)

    # -- forward --------------------------------------------------------------------------
    def forward(self, input, hx=None, lengths=None, *, dropout_masks=None):
        """Run the layers over the sequence. Returns (output, h_n); for LSTM h_n is (h_n, c_n).

        input:   (T, B, input_size), (B, T, input_size) with batch_first, or (T, input_size)
        hx:      h0 (L*D, B, H_out) (2-D (L*D, H_out) for unbatched input), never batch-first;
                 for LSTM a pair (h0, c0) with c0 (L*D, B, hidden_size). Zeros when None.
        lengths: one int per sequence, 1..T: the result torch gives for the same input packed
                 with pack_padded_sequence(..., enforce_sorted=False) and unpacked with
                 pad_packed_sequence(..., total_length=T). Padded outputs are zero.
        dropout_masks: in training mode, the multipliers (0 or 1/(1-p)) for each layer's output
                 that feeds another layer, each shaped like ``output``; drawn from ``self.rng``
                 when None. The masks used are kept in ``self.last_dropout_masks`` (in the
                 layout of ``output``) so that they can be given to another implementation.
        output:  (T, B, D*H_out) in the input's layout; [..., :H_out] is the forward direction.
        """
        x, h0, c0, lengths, masks, batched, hx_given = self._check_forward_args(
            input, hx, lengths, dropout_masks
        )
        self._saved = None  # what the last call kept shares the work arrays this call overwrites
        T, B, _ = x.shape
        D, H_out = self.num_directions, self.output_hidden_size
        valid = None
        if lengths is not None and np.any(lengths < T):
            valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)

        use_dropout = self.training and self.num_layers > 1 and (
            self.dropout > 0 or masks is not None
        )
        ### BEGIN SOLUTION
        ### HINT: per layer and direction: x_proj of all steps in one product, direction_forward,
        ### HINT: rows layer * D + direction of h_n (and c_n); concatenate the directions; in
        ### HINT: training, each layer's output but the last times its dropout mask. Leave h_n,
        ### HINT: c_n, layers (a LayerCache each), used_masks, the last output in layer_input.
        h_n = np.empty_like(h0)
        c_n = None if c0 is None else np.empty_like(c0)
        layers: list[LayerCache] = []
        used_masks = []
        layer_input = np.ascontiguousarray(x)  # (T, B, I): reshapes to (T*B, I) without a copy
        for layer in range(self.num_layers):
            outputs, direction_caches = [], []
            for direction in range(D):
                row = layer * D + direction
                W_ih, b_ih, weights = self._direction_weights(layer, direction)
                x_proj_2d, storage = self._work_arrays(layer, direction, T, B)
                GH, I_layer = W_ih.shape
                # (T, B, G*H): every step's input share at once, in one (T*B, I) product
                x_proj = np.matmul(layer_input.reshape(T * B, I_layer), W_ih.T,
                                   out=x_proj_2d).reshape(T, B, GH)
                if b_ih is not None:
                    x_proj += b_ih
                output, h_n[row], c_last, cache = direction_forward(
                    self.mode, x_proj, h0[row], None if c0 is None else c0[row], weights,
                    valid, reverse=direction == 1, storage=storage,
                )
                if c_n is not None:
                    c_n[row] = c_last
                outputs.append(output)
                direction_caches.append(cache)
            layer_output = outputs[0] if D == 1 else np.concatenate(outputs, axis=-1)
            mask = None
            if use_dropout and layer < self.num_layers - 1:
                mask = masks[layer] if masks is not None else self._draw_dropout_mask(
                    (T, B, D * H_out))
                layer_output = layer_output * mask
                used_masks.append(mask)
            layers.append(LayerCache(layer_input, direction_caches, mask))
            layer_input = layer_output
        ### END SOLUTION

        self.last_dropout_masks = (
            [self._to_user_layout(m, batched) for m in used_masks] if used_masks else None
        )
        output = self._to_user_layout(layer_input, batched)
        if output.base is not None:  # a view of the states the cache keeps: hand out a copy
            output = output.copy()
        h_n_user = h_n if batched else h_n[:, 0, :]
        self._save_for_backward(ForwardCache(batched, hx_given, input.shape, output.shape,
                                             h_n_user.shape, layers))
        if self.mode == "LSTM":
            c_n_user = c_n if batched else c_n[:, 0, :]
            return output, (h_n_user, c_n_user)
        return output, h_n_user

    # -- backward -------------------------------------------------------------------------
    def backward(self, grad_output, grad_h_n=None):
        """Back-propagate through time from dL/d output (and dL/d h_n, dL/d c_n).

        grad_output: shaped like the last forward's output.
        grad_h_n:    None, or shaped like h_n; for LSTM None or a pair (dh_n, dc_n), either
                     of which may be None.
        Adds every parameter's gradient into ``self.grads`` and returns
        (grad_input, grad_hx): grad_input shaped like input, grad_hx shaped like hx (a pair for
        LSTM), or None when forward was called without hx.
        """
        cache = self._saved_for_backward()
        batched = cache.batched
        dout = check_array("grad_output", grad_output, self.dtype)
        check_shape("grad_output", dout, cache.output_shape)
        rows = self.num_layers * self.num_directions
        B = cache.layers[0].layer_input.shape[1]
        h_shape = (rows, B, self.output_hidden_size)
        c_shape = (rows, B, self.hidden_size)
        dh_n, dc_n = self._check_state("grad_h_n", grad_h_n, h_shape, c_shape, batched)
        if dh_n is None:
            dh_n = np.zeros(h_shape, dtype=self.dtype)
        if dc_n is None and self.mode == "LSTM":
            dc_n = np.zeros(c_shape, dtype=self.dtype)

        D, H_out = self.num_directions, self.output_hidden_size
        ### BEGIN SOLUTION
        ### HINT: from the top layer down: the dropout mask on the gradient, direction_backward
        ### HINT: per direction (its slice of the gradient, its rows of dh_n, dc_n), the input's
        ### HINT: gradient dx_proj W_ih summed over directions, _accumulate. Leave dh0, dc0 and
        ### HINT: the input's gradient in dlayer_output.
        dh0 = np.empty_like(dh_n)
        dc0 = None if dc_n is None else np.empty_like(dc_n)
        dlayer_output = self._to_time_major(dout, batched)
        for layer in reversed(range(self.num_layers)):
            layer_cache = cache.layers[layer]
            if layer_cache.dropout_mask is not None:
                dlayer_output = dlayer_output * layer_cache.dropout_mask
            X = layer_cache.layer_input  # (T, B, I_layer)
            T, B, I_layer = X.shape
            dlayer_input = np.zeros_like(X)
            for direction in range(D):
                row = layer * D + direction
                W_ih, b_ih, weights = self._direction_weights(layer, direction)
                dx_proj, dh0[row], dc_first, rec = direction_backward(
                    dlayer_output[..., direction * H_out:(direction + 1) * H_out],
                    dh_n[row], None if dc_n is None else dc_n[row],
                    layer_cache.directions[direction], weights,
                )
                if dc0 is not None:
                    dc0[row] = dc_first
                layer_cache.directions[direction] = None  # its caches are no longer needed
                dlayer_input += (dx_proj.reshape(T * B, W_ih.shape[0]) @ W_ih).reshape(
                    T, B, I_layer)
                self._accumulate(layer, direction, X, dx_proj, rec)
            dlayer_output = dlayer_input
        ### END SOLUTION
        self._release_saved()

        grad_input = self._to_user_layout(dlayer_output, batched)
        if not cache.hx_given:
            return grad_input, None
        dh0_user = dh0 if batched else dh0[:, 0, :]
        if self.mode == "LSTM":
            return grad_input, (dh0_user, dc0 if batched else dc0[:, 0, :])
        return grad_input, dh0_user

    def _accumulate(self, layer, direction, X, dx_proj, rec) -> None:
        """Add one direction's parameter gradients into self._grads (as torch adds to .grad)."""
        ### BEGIN SOLUTION
        ### HINT: add into self._grads: dW_ih = dx_proj^T X over all steps, dW_hh, both bias
        ### HINT: gradients (db_ih sums dx_proj) and, with a projection, dW_hr.
        sfx = self._suffix(layer, direction)
        T, B, GH = dx_proj.shape
        dx_proj_2d = dx_proj.reshape(T * B, GH)
        grads = self._grads
        X_2d = X.reshape(T * B, X.shape[-1])  # (T*B, I_layer)
        grads[f"weight_ih{sfx}"] += dx_proj_2d.T @ X_2d  # (G*H, I_layer)
        grads[f"weight_hh{sfx}"] += rec.dW_hh
        if self.bias:
            grads[f"bias_ih{sfx}"] += dx_proj_2d.sum(axis=0)
            grads[f"bias_hh{sfx}"] += rec.db_hh
        if self.proj_size:
            grads[f"weight_hr{sfx}"] += rec.dW_hr
        ### END SOLUTION


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, dtype=np.float64,
                 seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype, seed=seed)


class LSTM(RNNBase):
    """LSTM with torch's gate order (i, f, g, o) and optional projection (proj_size)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, dtype=np.float64, seed=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, dtype=dtype, seed=seed)


class GRU(RNNBase):
    """GRU in torch's variant: the reset gate multiplies (h W_hn^T + b_hn)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, dtype=np.float64, seed=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype=dtype, seed=seed)
