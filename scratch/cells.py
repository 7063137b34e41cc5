"""The single-step cells: RNNCell, LSTMCell and GRUCell, with torch.nn's cell API.

A cell runs one time step; the caller writes the loop over time. The math is that of
``scratch.functional`` (one copy of it), the cells add parameters, argument checks and the
bookkeeping of forward and backward:

    RNNCell:   h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh),  act = tanh or relu
    LSTMCell:  gates i, f, g, o of x W_ih^T + b_ih + h W_hh^T + b_hh;
               c' = f * c + i * g,  h' = o * tanh(c')
    GRUCell:   r, z, n from x_proj = x W_ih^T + b_ih and gh = h W_hh^T + b_hh;
               n = tanh(x_proj_n + r * gh_n),  h' = (1 - z) * n + z * h

Parameters (G = 1 RNNCell, 4 LSTMCell, 3 GRUCell): weight_ih (G*H, I), weight_hh (G*H, H),
bias_ih and bias_hh (G*H,) when bias=True (None otherwise, as torch's), each drawn from
U(-1/sqrt(H), 1/sqrt(H)), and each an attribute as well (``cell.weight_ih``).

Shapes: input (B, I) or unbatched (I,); hx (B, H) or (H,), for LSTMCell a pair (h, c);
zeros when hx is None. ``backward`` returns (grad_input, grad_hx) shaped like input and hx
(grad_hx is None when forward got no hx) and adds the parameter gradients into ``grads``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from scratch._checks import check_array, check_bool, check_positive_int, check_shape
from scratch.functional.gru_cell import gru_cell_backward, gru_cell_forward
from scratch.functional.lstm_cell import lstm_cell_backward, lstm_cell_forward
from scratch.functional.rnn_cell import rnn_cell_backward, rnn_cell_forward
from scratch.module import Module, check_dtype


class CellForwardCache(NamedTuple):
    batched: bool  # False when the input was (I,)
    hx_given: bool  # whether forward got hx (then backward returns its gradient)
    batch_size: int  # B (1 for unbatched input)
    cell: Any  # the functional cell's cache (RNNCellCache, LSTMCellCache or GRUCellCache)


class RNNCellBase(Module):
    """What the three cells share: parameters, init, argument checks, call order."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, *,
                 dtype=np.float64, seed: int | None = None) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_bool("bias", bias)
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bool(bias)
        self.dtype = check_dtype(dtype)
        self.rng = np.random.default_rng(seed)

        gate_size = num_chunks * self.hidden_size
        self.register_parameter("weight_ih", self._empty(gate_size, self.input_size))
        self.register_parameter("weight_hh", self._empty(gate_size, self.hidden_size))
        # without bias, torch's cells hold bias_ih = bias_hh = None; its layers hold no such name
        self.register_parameter("bias_ih", self._empty(gate_size) if self.bias else None)
        self.register_parameter("bias_hh", self._empty(gate_size) if self.bias else None)
        self.reset_parameters()

    def _empty(self, *shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=self.dtype)

    def reset_parameters(self) -> None:
        """torch's init: every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)),
        drawn in registration order from the module's Generator (``self.rng``)."""
        self.fill_uniform_(self.rng, 1.0 / math.sqrt(self.hidden_size))

    def _weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(W_ih, W_hh, b_ih, b_hh); the biases are None when bias=False."""
        p = self._parameters
        return p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh")

    def __repr__(self) -> str:
        args = [str(self.input_size), str(self.hidden_size)]
        if not self.bias:
            args.append("bias=False")
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            args.append(f"nonlinearity={nonlinearity!r}")
        if self.dtype != np.float64:
            args.append(f"dtype={self.dtype}")
        return f"{type(self).__name__}({', '.join(args)})"

    # -- argument checks ------------------------------------------------------------------
    def _check_input(self, input) -> tuple[np.ndarray, bool]:
        """input (B, I) or (I,) -> x (B, I) and whether it was batched."""
        name = type(self).__name__
        x = check_array("input", input, self.dtype)
        if x.ndim not in (1, 2):
            raise ValueError(
                f"{name}: Expected input to be 1D or 2D, got {x.ndim}D instead (input of "
                f"shape {x.shape}; expected (B, {self.input_size}) or ({self.input_size},))"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"input has inconsistent input_size: got {x.shape[-1]} expected "
                f"{self.input_size} (input of shape {x.shape})"
            )
        batched = x.ndim == 2
        return (x if batched else x[None, :]), batched

    def _check_state(self, name: str, torch_name: str, value, batch_size: int,
                     batched: bool) -> np.ndarray:
        """One state (h or c) as the user gave it -> (B, H). torch_name is what torch's
        message calls it (hidden0 for h, hidden1 for c)."""
        H = self.hidden_size
        state = check_array(name, value, self.dtype)
        if not batched:
            check_shape(name, state, (H,))
            return state[None, :]
        if state.ndim != 2:
            raise ValueError(
                f"{name} must be 2-D ({batch_size}, {H}) for 2-D input, got {state.ndim}-D of "
                f"shape {state.shape}"
            )
        if state.shape[0] != batch_size:
            raise ValueError(
                f"Input batch size {batch_size} doesn't match {torch_name} batch size "
                f"{state.shape[0]} ({name} of shape {state.shape})"
            )
        if state.shape[1] != H:
            raise ValueError(
                f"{torch_name} has inconsistent hidden_size: got {state.shape[1]}, expected "
                f"{H} ({name} of shape {state.shape})"
            )
        return state

    def _check_grad(self, name: str, value, cache: CellForwardCache) -> np.ndarray:
        """A gradient of h (or c): shaped like the last forward's h -> (B, H)."""
        grad = check_array(name, value, self.dtype)
        expected = (cache.batch_size, self.hidden_size) if cache.batched else (self.hidden_size,)
        check_shape(name, grad, expected)
        return grad if cache.batched else grad[None, :]

    # -- forward / backward bookkeeping ---------------------------------------------------
    def _remember(self, cell_cache, batched: bool, hx_given: bool, batch_size: int) -> None:
        self._save_for_backward(CellForwardCache(batched, hx_given, batch_size, cell_cache))

    def _accumulate(self, dW_ih, dW_hh, db_ih, db_hh) -> None:
        """Add this step's parameter gradients into self._grads (as torch adds to .grad)."""
        self._grads["weight_ih"] += dW_ih
        self._grads["weight_hh"] += dW_hh
        if self.bias:
            self._grads["bias_ih"] += db_ih
            self._grads["bias_hh"] += db_hh

    @staticmethod
    def _to_user(array: np.ndarray, batched: bool) -> np.ndarray:
        return array if batched else array[0]


class RNNCell(RNNCellBase):
    """Elman cell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", *, dtype=np.float64,
                 seed: int | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype, seed=seed)

    def forward(self, input, hx=None):
        """input (B, I) or (I,), hx (B, H) or (H,) or None (zeros). Returns h' like hx."""
        x, batched = self._check_input(input)
        B = x.shape[0]
        h_prev = (np.zeros((B, self.hidden_size), dtype=self.dtype) if hx is None
                  else self._check_state("hx", "hidden0", hx, B, batched))
        W_ih, W_hh, b_ih, b_hh = self._weights()
        h, cell_cache = rnn_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh, self.nonlinearity)
        self._remember(cell_cache, batched, hx is not None, B)
        return self._to_user(h, batched)

    def backward(self, grad_h):
        """grad_h = dL/dh', shaped like h'. Returns (grad_input, grad_hx or None)."""
        cache = self._saved_for_backward()
        dh = self._check_grad("grad_h", grad_h, cache)
        g = rnn_cell_backward(dh, cache.cell)
        self._accumulate(g.dW_ih, g.dW_hh, g.db_ih, g.db_hh)
        self._release_saved()
        grad_hx = self._to_user(g.dh_prev, cache.batched) if cache.hx_given else None
        return self._to_user(g.dx, cache.batched), grad_hx


class LSTMCell(RNNCellBase):
    """LSTM cell with torch's gate order (i, f, g, o); hx and the result are pairs (h, c)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 dtype=np.float64, seed: int | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, dtype=dtype, seed=seed)

    def forward(self, input, hx=None):
        """input (B, I) or (I,), hx a pair (h, c) of (B, H) or (H,), or None (zeros).

        Returns the pair (h', c')."""
        x, batched = self._check_input(input)
        B = x.shape[0]
        if hx is None:
            h_prev = np.zeros((B, self.hidden_size), dtype=self.dtype)
            c_prev = np.zeros((B, self.hidden_size), dtype=self.dtype)
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx must be a pair (h, c) for LSTMCell, got "
                                f"{type(hx).__name__}")
            h_prev = self._check_state("hx[0]", "hidden0", hx[0], B, batched)
            c_prev = self._check_state("hx[1]", "hidden1", hx[1], B, batched)
        W_ih, W_hh, b_ih, b_hh = self._weights()
        h, c, cell_cache = lstm_cell_forward(x, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh)
        self._remember(cell_cache, batched, hx is not None, B)
        return self._to_user(h, batched), self._to_user(c, batched)

    def backward(self, grad_h=None, grad_c=None):
        """grad_h = dL/dh', grad_c = dL/dc', each shaped like h' or None (zero), not both.

        Returns (grad_input, (grad_h0, grad_c0)), or (grad_input, None) without hx."""
        cache = self._saved_for_backward()
        if grad_h is None and grad_c is None:
            raise ValueError("LSTMCell.backward needs grad_h or grad_c (or both), got neither")
        zeros = np.zeros((cache.batch_size, self.hidden_size), dtype=self.dtype)
        dh = zeros if grad_h is None else self._check_grad("grad_h", grad_h, cache)
        dc = zeros if grad_c is None else self._check_grad("grad_c", grad_c, cache)
        g = lstm_cell_backward(dh, dc, cache.cell)
        self._accumulate(g.dW_ih, g.dW_hh, g.db_ih, g.db_hh)
        self._release_saved()
        grad_hx = None
        if cache.hx_given:
            grad_hx = (self._to_user(g.dh_prev, cache.batched),
                       self._to_user(g.dc_prev, cache.batched))
        return self._to_user(g.dx, cache.batched), grad_hx


class GRUCell(RNNCellBase):
    """GRU cell in torch's variant: the reset gate multiplies (h W_hn^T + b_hn)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 dtype=np.float64, seed: int | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype, seed=seed)

    def forward(self, input, hx=None):
        """input (B, I) or (I,), hx (B, H) or (H,) or None (zeros). Returns h' like hx."""
        x, batched = self._check_input(input)
        B = x.shape[0]
        h_prev = (np.zeros((B, self.hidden_size), dtype=self.dtype) if hx is None
                  else self._check_state("hx", "hidden0", hx, B, batched))
        W_ih, W_hh, b_ih, b_hh = self._weights()
        h, cell_cache = gru_cell_forward(x, h_prev, W_ih, W_hh, b_ih, b_hh)
        self._remember(cell_cache, batched, hx is not None, B)
        return self._to_user(h, batched)

    def backward(self, grad_h):
        """grad_h = dL/dh', shaped like h'. Returns (grad_input, grad_hx or None)."""
        cache = self._saved_for_backward()
        dh = self._check_grad("grad_h", grad_h, cache)
        g = gru_cell_backward(dh, cache.cell)
        self._accumulate(g.dW_ih, g.dW_hh, g.db_ih, g.db_hh)
        self._release_saved()
        grad_hx = self._to_user(g.dh_prev, cache.batched) if cache.hx_given else None
        return self._to_user(g.dx, cache.batched), grad_hx
