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
    flatten_steps,
)

# G, the number of gate blocks each weight matrix stacks: W_ih is (G*H, I), W_hh (G*H, H_out).
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class LayerCache(NamedTuple):
    layer_input: np.ndarray  # (T, B, I_layer), time-major
    directions: list[DirectionCache]
    dropout_mask: np.ndarray | None  # (T, B, D*H_out) applied to this layer's output


class ForwardInputs(NamedTuple):
    """forward's arguments, checked and converted to the layout the loop works in."""

    x: np.ndarray  # (T, B, I), time-major and batched
    h0: np.ndarray  # (L*D, B, H_out), zeros when no hx was given
    c0: np.ndarray | None  # (L*D, B, H), LSTM only
    valid: np.ndarray | None  # (T, B, 1) bool: t below the sequence's length; None: all valid
    masks: list[np.ndarray] | None  # (T, B, D*H_out) per layer but the last, when given
    use_dropout: bool  # training with dropout between layers
    batched: bool
    hx_given: bool


class ForwardCache(NamedTuple):
    batched: bool
    hx_given: bool
    output_shape: tuple  # of the output forward returned: grad_output's shape
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
        if mode not in GATES:
            raise ValueError(f"mode must be one of {sorted(GATES)}, got {mode!r}")
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

        gate_size = GATES[mode] * hidden_size
        h_out = self.proj_size or hidden_size
        self._all_weights: list[list[str]] = []  # the parameters' names, one list a direction
        for layer in range(num_layers):
            for direction in range(self.num_directions):
                layer_input_size = input_size if layer == 0 else h_out * self.num_directions
                sfx = self._suffix(layer, direction)
                shapes: dict[str, tuple[int, ...]] = {
                    f"weight_ih{sfx}": (gate_size, layer_input_size),
                    f"weight_hh{sfx}": (gate_size, h_out),
                }
                if bias:
                    shapes[f"bias_ih{sfx}"] = (gate_size,)
                    shapes[f"bias_hh{sfx}"] = (gate_size,)
                if self.proj_size:
                    shapes[f"weight_hr{sfx}"] = (proj_size, hidden_size)
                for name, shape in shapes.items():
                    self.register_parameter(name, self._empty(*shape))
                self._all_weights.append(list(shapes))
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
        self.fill_uniform_(self.rng, 1.0 / math.sqrt(self.hidden_size))  # {#init}

    @property
    def all_weights(self) -> list[list[np.ndarray]]:
        """torch's all_weights: per layer, then per direction, the parameter arrays themselves
        in the order weight_ih, weight_hh, bias_ih, bias_hh, weight_hr (those that exist)."""
        return [[self._parameters[name] for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op, as torch's is off cuDNN: torch packs the weights into one buffer for cuDNN;
        NumPy has nothing to pack. Here so that code written for torch runs unchanged."""

    def _direction_weights(self, layer: int, direction: int):
        sfx = self._suffix(layer, direction)
        p = self._parameters
        W_ih = p[f"weight_ih{sfx}"]
        b_ih = p.get(f"bias_ih{sfx}")
        recurrent = DirectionWeights(p[f"weight_hh{sfx}"], p.get(f"bias_hh{sfx}"),
                                     p.get(f"weight_hr{sfx}"))
        return W_ih, b_ih, recurrent

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
    def _forward_inputs(self, input, hx, lengths, dropout_masks) -> ForwardInputs:
        """Check every argument of forward and return them time-major and batched, lengths as
        the mask ``valid``."""
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

        valid = None
        if lengths is not None and np.any(lengths < T):
            valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)
        use_dropout = self.training and self.num_layers > 1 and (
            self.dropout > 0 or masks is not None
        )
        return ForwardInputs(x, h0, c0, valid, masks, use_dropout, batched, hx is not None)

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
        x, h0, c0, valid, masks, use_dropout, batched, hx_given = self._forward_inputs(
            input, hx, lengths, dropout_masks)
        D = self.num_directions
        ### BEGIN SOLUTION
        ### HINT: per layer and direction: x_proj = layer_input @ W_ih.T + b_ih for all steps in
        ### HINT: one (T*B, I_layer) product, then direction_forward (reverse for direction 1)
        ### HINT: from rows layer * D + direction of h0 (and c0). A layer's output concatenates
        ### HINT: its directions' outputs; in training, each layer's output but the last is
        ### HINT: multiplied by its dropout mask, and it is the next layer's input. Leave h_n,
        ### HINT: c_n (lists of rows), layers (a LayerCache each), used_masks and the last
        ### HINT: output in layer_input.
        rows = self.num_layers * D
        h_n, c_n = [None] * rows, [None] * rows
        layers, used_masks = [], []
        layer_input = x  # (T, B, I)
        for layer in range(self.num_layers):
            T, B = layer_input.shape[:2]
            outputs, direction_caches = [], []
            for direction in range(D):
                row = layer * D + direction  # the row of h0 and h_n
                W_ih, b_ih, weights = self._direction_weights(layer, direction)
                # every step's input share in one (T*B, I_layer) product, outside the time loop
                x_proj = flatten_steps(layer_input) @ W_ih.T  # (T*B, G*H)  {#layer-x-proj}
                if b_ih is not None:
                    x_proj = x_proj + b_ih  # (T*B, G*H)  {#layer-x-proj-bias}
                x_proj = x_proj.reshape(T, B, W_ih.shape[0])  # (T, B, G*H)
                output, h_n[row], c_n[row], cache = direction_forward(  # {#layer-direction-forward}
                    self.mode, x_proj, h0[row],
                    None if c0 is None else c0[row], weights, valid, reverse=direction == 1,
                )
                outputs.append(output)
                direction_caches.append(cache)
            layer_output = np.concatenate(outputs, axis=-1)  # (T, B, D*H_out)  {#layer-concat}
            mask = None
            if use_dropout and layer < self.num_layers - 1:  # between layers, not after the last
                mask = self._dropout_mask(layer, masks, layer_output.shape)
                layer_output = layer_output * mask  # {#layer-dropout}
                used_masks.append(mask)
            layers.append(LayerCache(layer_input, direction_caches, mask))
            layer_input = layer_output
        ### END SOLUTION
        output, state = self._forward_outputs(layer_input, h_n, c_n, used_masks, batched)
        self._save_for_backward(ForwardCache(batched, hx_given, output.shape, layers))
        return output, state

    def _dropout_mask(self, layer, masks, shape):
        """The dropout mask of this layer's output: the one given, or a new one drawn."""
        return masks[layer] if masks is not None else self._draw_dropout_mask(shape)

    def _forward_outputs(self, output, h_n, c_n, used_masks, batched):
        """The loop's time-major results -> what forward returns, in the input's layout."""
        self.last_dropout_masks = (
            [self._to_user_layout(m, batched) for m in used_masks] if used_masks else None
        )
        output = self._to_user_layout(output, batched)
        h_n = np.stack(h_n)  # (L*D, B, H_out), row layer * D + direction
        h_n = h_n if batched else h_n[:, 0, :]
        if self.mode != "LSTM":
            return output, h_n
        c_n = np.stack(c_n)  # (L*D, B, H)
        return output, (h_n, c_n if batched else c_n[:, 0, :])

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
        dout, dh_n, dc_n = self._backward_inputs(cache, grad_output, grad_h_n)
        D = self.num_directions
        ### BEGIN SOLUTION
        ### HINT: from the top layer down: the gradient times the layer's dropout mask (when it
        ### HINT: has one); per direction, direction_backward with its slice of the gradient
        ### HINT: (np.split in D) and its rows of dh_n (and dc_n); the input's gradient is
        ### HINT: dx_proj @ W_ih summed over the directions; _accumulate adds the parameters'
        ### HINT: gradients. Leave dh0, dc0 (lists of rows) and the input's gradient in
        ### HINT: dlayer_output.
        rows = self.num_layers * D
        dh0, dc0 = [None] * rows, [None] * rows
        dlayer_output = dout  # (T, B, D*H_out)
        for layer in reversed(range(self.num_layers)):
            layer_cache = cache.layers[layer]
            if layer_cache.dropout_mask is not None:  # back through layer_output * mask
                dlayer_output = dlayer_output * layer_cache.dropout_mask  # {#layer-ddropout}
            X = layer_cache.layer_input  # (T, B, I_layer)
            doutputs = np.split(dlayer_output, D, axis=-1)  # each (T, B, H_out)
            dlayer_input = np.zeros_like(X)
            for direction in range(D):
                row = layer * D + direction
                W_ih, b_ih, weights = self._direction_weights(layer, direction)
                dx_proj, dh0[row], dc0[row], rec = direction_backward(  # {#layer-direction-back}
                    doutputs[direction], dh_n[row], None if dc_n is None else dc_n[row],
                    layer_cache.directions[direction], weights,
                )
                # back through x_proj = layer_input @ W_ih.T (one product over all steps),
                # summed over the directions
                dX = flatten_steps(dx_proj) @ W_ih  # (T*B, I_layer)  {#layer-dx}
                dlayer_input = dlayer_input + dX.reshape(X.shape)  # (T, B, I_layer)
                self._accumulate(layer, direction, X, dx_proj, rec)
            dlayer_output = dlayer_input
        ### END SOLUTION
        self._release_saved()
        return self._backward_outputs(cache, dlayer_output, dh0, dc0)

    def _accumulate(self, layer, direction, X, dx_proj, rec) -> None:
        """Add one direction's parameter gradients into self._grads (as torch adds to .grad).

        X: (T, B, I_layer) the layer's input, dx_proj: (T, B, G*H) the gradient of its input
        projection, rec: the DirectionGrads of direction_backward."""
        ### BEGIN SOLUTION
        ### HINT: add into self._grads: dW_ih = dx_proj.T @ X as one product over the rows of
        ### HINT: all steps, dW_hh, db_ih = dx_proj summed over steps and batch, db_hh and, with
        ### HINT: a projection, dW_hr.
        sfx = self._suffix(layer, direction)
        grads = self._grads
        dW_ih = flatten_steps(dx_proj).T @ flatten_steps(X)  # (G*H, I_layer)  {#layer-dw-ih}
        grads[f"weight_ih{sfx}"] += dW_ih
        grads[f"weight_hh{sfx}"] += rec.dW_hh  # (G*H, H_out)
        if self.bias:
            grads[f"bias_ih{sfx}"] += dx_proj.sum(axis=(0, 1))  # (G*H,)  {#layer-db-ih}
            grads[f"bias_hh{sfx}"] += rec.db_hh  # (G*H,)
        if self.proj_size:
            grads[f"weight_hr{sfx}"] += rec.dW_hr  # (P, H)
        ### END SOLUTION

    def _backward_inputs(self, cache, grad_output, grad_h_n):
        """Check backward's arguments against the last forward and return them time-major and
        batched: dout (T, B, D*H_out), dh_n (L*D, B, H_out), dc_n (L*D, B, H) or None, zeros
        for a state gradient not given."""
        dout = check_array("grad_output", grad_output, self.dtype)
        check_shape("grad_output", dout, cache.output_shape)
        rows = self.num_layers * self.num_directions
        B = cache.layers[0].layer_input.shape[1]
        h_shape = (rows, B, self.output_hidden_size)
        c_shape = (rows, B, self.hidden_size)
        dh_n, dc_n = self._check_state("grad_h_n", grad_h_n, h_shape, c_shape, cache.batched)
        if dh_n is None:
            dh_n = np.zeros(h_shape, dtype=self.dtype)
        if dc_n is None and self.mode == "LSTM":
            dc_n = np.zeros(c_shape, dtype=self.dtype)
        return self._to_time_major(dout, cache.batched), dh_n, dc_n

    def _backward_outputs(self, cache, dinput, dh0, dc0):
        """The loop's time-major gradients -> (grad_input, grad_hx) in the caller's layout."""
        batched = cache.batched
        grad_input = self._to_user_layout(dinput, batched)
        if not cache.hx_given:
            return grad_input, None
        dh0 = np.stack(dh0)  # (L*D, B, H_out)
        dh0 = dh0 if batched else dh0[:, 0, :]
        if self.mode != "LSTM":
            return grad_input, dh0
        dc0 = np.stack(dc0)  # (L*D, B, H)
        return grad_input, (dh0, dc0 if batched else dc0[:, 0, :])


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
