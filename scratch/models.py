"""Whole models built from the layers: the newcomer's SimpleRNN and a character-level LM.

Both are ``Module`` composites: their layers are children (``add_module``), so the state dict
keys read like torch's ("rnn.weight_ih_l0", "head.weight") and the torch twins in
``torch_impl.models`` load them as they are. ``backward`` walks the layers in reverse order,
handing each layer's input gradient to the layer below.
"""

from __future__ import annotations

import numbers

import numpy as np

from scratch._checks import check_array, check_positive_int, check_shape
from scratch.embedding import Embedding
from scratch.linear import Linear
from scratch.module import CallOrderError, Module, check_dtype
from scratch.recurrent import GRU, LSTM, RNN, RNNBase

KINDS = ("rnn", "lstm", "gru")


def _recurrent_layer(kind, input_size, hidden_size, num_layers, nonlinearity, bias,
                     batch_first, dropout, bidirectional, dtype, seed) -> RNNBase:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    common = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, dropout=dropout,
                  bidirectional=bidirectional, dtype=dtype, seed=seed)
    if kind == "rnn":
        return RNN(input_size, hidden_size, nonlinearity=nonlinearity, **common)
    if nonlinearity != "tanh":
        raise ValueError(f"nonlinearity is an option of kind='rnn' only, got "
                         f"nonlinearity={nonlinearity!r} with kind={kind!r}")
    return (LSTM if kind == "lstm" else GRU)(input_size, hidden_size, **common)


def _child_seeds(seed: int | None, count: int) -> list[int]:
    """Independent seeds for the children, all drawn from the model's one seed."""
    return [int(s) for s in np.random.default_rng(seed).integers(2**62, size=count)]


class SimpleRNN(Module):
    """A recurrent layer whose last hidden state feeds a Linear head.

        output, h_n = rnn(x, hx, lengths)     h_n: (L*D, B, H_out) (LSTM: (h_n, c_n))
        last = [h_n[-D] | ... | h_n[-1]]      (B, D*H_out): the top layer's final state of each
                                              direction, side by side
        y    = last W^T + b                   (B, output_size)

    With ``lengths``, h_n is each sequence's state at its own last valid step, so the head
    reads that step, not the padding. Use y as a regression output (with MSELoss) or as class
    logits (with CrossEntropyLoss). ``bias`` applies to both layers.
    Children: ``rnn`` (scratch.RNN, LSTM or GRU) and ``head`` (scratch.Linear).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, kind: str = "rnn",
                 num_layers: int = 1, nonlinearity: str = "tanh", bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, dtype=np.float64, seed: int | None = None) -> None:
        super().__init__()
        check_positive_int("output_size", output_size)
        self.dtype = check_dtype(dtype)
        self.kind = kind
        rnn_seed, head_seed = _child_seeds(seed, 2)
        self.rnn = _recurrent_layer(kind, input_size, hidden_size, num_layers, nonlinearity,
                                    bias, batch_first, dropout, bidirectional, dtype, rnn_seed)
        D = self.rnn.num_directions
        self.head = Linear(D * self.rnn.output_hidden_size, output_size, bias=bias,
                           dtype=dtype, seed=head_seed)
        self.add_module("rnn", self.rnn)
        self.add_module("head", self.head)
        self._shapes: tuple | None = None  # (output shape, h_n shape) of the last forward

    def __repr__(self) -> str:
        return f"SimpleRNN(kind={self.kind!r}, rnn={self.rnn!r}, head={self.head!r})"

    def forward(self, input: np.ndarray, hx=None, lengths=None):
        """Returns (y, h_n). input, hx and lengths as for the recurrent layer (``self.rnn``);
        y: (B, output_size), or (output_size,) for unbatched input."""
        output, h_n = self.rnn(input, hx, lengths)
        h = h_n[0] if self.rnn.mode == "LSTM" else h_n  # (L*D, B, H_out)
        D = self.rnn.num_directions
        last = np.concatenate(list(h[-D:]), axis=-1)  # (B, D*H_out)
        y = self.head(last)  # (B, output_size)
        self._shapes = (output.shape, h.shape)
        return y, h_n

    def backward(self, grad_output: np.ndarray, grad_h_n=None):
        """dL/dy (and optionally dL/dh_n) -> (grad_input, grad_hx) as the recurrent layer's
        backward returns them; adds every parameter's gradient into ``self.grads``."""
        if self._shapes is None:
            raise CallOrderError("SimpleRNN.backward() called before forward() (or twice)")
        output_shape, h_shape = self._shapes
        dh_n, dc_n = _check_grad_h_n(self.rnn, grad_h_n, h_shape)
        dlast = self.head.backward(grad_output)  # (B, D*H_out)
        self._shapes = None
        D, H_out = self.rnn.num_directions, self.rnn.output_hidden_size
        dh = np.zeros(h_shape, dtype=self.dtype) if dh_n is None else dh_n.copy()
        for d in range(D):  # the head read row -D + d of h_n: its gradient goes back there
            dh[d - D] += dlast[..., d * H_out:(d + 1) * H_out]
        doutput = np.zeros(output_shape, dtype=self.dtype)  # the head reads no other output
        grad_h = (dh, dc_n) if self.rnn.mode == "LSTM" else dh
        return self.rnn.backward(doutput, grad_h)

def _check_grad_h_n(rnn: RNNBase, grad_h_n, h_shape: tuple):
    """grad_h_n as the recurrent layer's backward takes it -> (dh_n, dc_n), checked up front
    (either may be None)."""
    if grad_h_n is None:
        return None, None
    if rnn.mode != "LSTM":
        return _checked("grad_h_n", grad_h_n, h_shape, rnn.dtype), None
    if not isinstance(grad_h_n, (tuple, list)) or len(grad_h_n) != 2:
        raise TypeError(f"grad_h_n must be a pair (dh_n, dc_n) for an LSTM, got "
                        f"{type(grad_h_n).__name__}")
    c_shape = h_shape[:-1] + (rnn.hidden_size,)
    dh_n, dc_n = grad_h_n
    return (None if dh_n is None else _checked("grad_h_n[0]", dh_n, h_shape, rnn.dtype),
            None if dc_n is None else _checked("grad_h_n[1]", dc_n, c_shape, rnn.dtype))


def _checked(name: str, value, shape: tuple, dtype) -> np.ndarray:
    value = check_array(name, value, dtype)
    check_shape(name, value, shape)
    return value


class CharLM(Module):
    """A character-level language model: predict each next character from the ones before.

        e      = embedding(tokens)            (T, B, embedding_dim)
        out, h = rnn(e, hx)                   (T, B, H)
        logits = out W^T + b                  (T, B, vocab_size), a score per next character

    Trained with cross-entropy at every step against the tokens shifted by one (see
    ``scratch.losses.flat_cross_entropy``). Children: ``embedding`` (scratch.Embedding),
    ``rnn`` (scratch.RNN, LSTM or GRU) and ``head`` (scratch.Linear).
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int,
                 kind: str = "lstm", num_layers: int = 1, dropout: float = 0.0,
                 batch_first: bool = False, *, dtype=np.float64, seed: int | None = None) -> None:
        super().__init__()
        self.dtype = check_dtype(dtype)
        self.kind = kind
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        emb_seed, rnn_seed, head_seed = _child_seeds(seed, 3)
        self.embedding = Embedding(vocab_size, embedding_dim, dtype=dtype, seed=emb_seed)
        self.rnn = _recurrent_layer(kind, embedding_dim, hidden_size, num_layers, "tanh", True,
                                    batch_first, dropout, False, dtype, rnn_seed)
        self.head = Linear(hidden_size, vocab_size, dtype=dtype, seed=head_seed)
        self.add_module("embedding", self.embedding)
        self.add_module("rnn", self.rnn)
        self.add_module("head", self.head)
        self._h_shape: tuple | None = None  # h_n's shape in the last forward

    def __repr__(self) -> str:
        return (f"CharLM(kind={self.kind!r}, embedding={self.embedding!r}, rnn={self.rnn!r}, "
                f"head={self.head!r})")

    def forward(self, tokens: np.ndarray, hx=None):
        """tokens: ints (T, B) ((B, T) with batch_first, or (T,)). Returns (logits, h_n),
        logits (T, B, vocab_size) in the tokens' layout; h_n as the recurrent layer's."""
        e = self.embedding(tokens)  # (T, B, E)
        out, h_n = self.rnn(e, hx)  # (T, B, H)
        logits = self.head(out)  # (T, B, V)
        self._h_shape = (h_n[0] if self.rnn.mode == "LSTM" else h_n).shape
        return logits, h_n

    def backward(self, grad_logits: np.ndarray, grad_h_n=None):
        """dL/dlogits (and optionally dL/dh_n) -> dL/dhx (None when forward got no hx); adds
        every parameter's gradient into ``self.grads``. Tokens have no gradient."""
        if self._h_shape is None:
            raise CallOrderError("CharLM.backward() called before forward() (or twice)")
        _check_grad_h_n(self.rnn, grad_h_n, self._h_shape)
        dout = self.head.backward(grad_logits)  # (T, B, H)
        self._h_shape = None
        de, grad_hx = self.rnn.backward(dout, grad_h_n)  # (T, B, E)
        self.embedding.backward(de)
        return grad_hx

    def generate(self, prompt, length: int, rng: np.random.Generator,
                 temperature: float = 1.0) -> np.ndarray:
        """Continue ``prompt`` (1-D token ids) by ``length`` tokens drawn one at a time from
        softmax(logits / temperature), with uniforms from ``rng``; returns the new tokens.
        Runs in eval mode (no dropout) and restores the mode; it discards any pending
        backward."""
        prompt = np.asarray(prompt)
        if prompt.ndim != 1 or prompt.size == 0:
            raise ValueError(f"prompt must be a non-empty 1-D array of token ids, got shape "
                             f"{prompt.shape}")
        check_positive_int("length", length, allow_zero=True)
        was_training = self.training
        self.eval()
        try:
            logits, h = self.forward(prompt)  # unbatched: logits (P, V)
            new = np.empty(length, dtype=np.int64)
            for k in range(length):
                new[k] = sample_from_logits(logits[-1], rng.random(), temperature)
                logits, h = self.forward(new[k:k + 1], h)
        finally:
            self.train(was_training)
        return new


def sample_from_logits(logits: np.ndarray, u: float, temperature: float = 1.0) -> int:
    """The class whose interval of the cumulative softmax(logits / temperature) holds u in
    [0, 1): a categorical draw made from one uniform, so that two implementations with equal
    logits and the same uniforms draw the same classes."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) \
            or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    z = np.asarray(logits, dtype=np.float64) / temperature  # (V,)
    p = np.exp(z - z.max())  # unnormalized softmax
    cdf = np.cumsum(p)  # (V,)
    index = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    return min(index, z.size - 1)
