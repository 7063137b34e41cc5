"""The torch twins of scratch's Linear, Embedding, SimpleRNN and CharLM, and torch training
steps written like scratch's (``scratch.tbptt``), so that the two can be run side by side.

The twins' submodules carry the same names as the scratch children (``rnn``, ``head``,
``embedding``), so both sides' state dicts have the same keys and ``to_torch``/``from_torch``
copy weights by name.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import scratch
from scratch.models import sample_from_logits
from torch_impl.convert import NUMPY_DTYPE, register_twin

TORCH_RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _kind_of(rnn: nn.Module) -> str:
    for kind, torch_type in TORCH_RNN.items():
        if type(rnn) is torch_type:
            return kind
    raise TypeError(f"expected nn.RNN, nn.LSTM or nn.GRU, got {type(rnn).__name__}")


class TorchSimpleRNN(nn.Module):
    """torch twin of scratch.SimpleRNN: recurrent layer, then Linear on the top layer's final
    state of each direction. With ``lengths`` the batch is packed (enforce_sorted=False), so
    h_n holds each sequence's state at its own last valid step."""

    def __init__(self, input_size, hidden_size, output_size, kind="rnn", num_layers=1,
                 nonlinearity="tanh", bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False):
        super().__init__()
        common = dict(num_layers=num_layers, bias=bias, batch_first=batch_first,
                      dropout=dropout, bidirectional=bidirectional)
        if kind == "rnn":
            common["nonlinearity"] = nonlinearity
        self.kind = kind
        self.rnn = TORCH_RNN[kind](input_size, hidden_size, **common)
        D = 2 if bidirectional else 1
        self.head = nn.Linear(D * hidden_size, output_size, bias=bias)

    def forward(self, input, hx=None, lengths=None):
        x = input
        if lengths is not None:
            x = pack_padded_sequence(input, torch.as_tensor(np.asarray(lengths), dtype=torch.int64),
                                     batch_first=self.rnn.batch_first, enforce_sorted=False)
        _, h_n = self.rnn(x, hx)
        h = h_n[0] if isinstance(self.rnn, nn.LSTM) else h_n  # (L*D, B, H)
        D = 2 if self.rnn.bidirectional else 1
        last = torch.cat(list(h[-D:]), dim=-1)  # (B, D*H)
        return self.head(last), h_n


class TorchCharLM(nn.Module):
    """torch twin of scratch.CharLM: Embedding -> recurrent layer -> Linear to the vocabulary."""

    def __init__(self, vocab_size, embedding_dim, hidden_size, kind="lstm", num_layers=1,
                 dropout=0.0, batch_first=False):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = TORCH_RNN[kind](embedding_dim, hidden_size, num_layers=num_layers,
                                   dropout=dropout, batch_first=batch_first)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens, hx=None):
        out, h_n = self.rnn(self.embedding(tokens), hx)
        return self.head(out), h_n


# -- twins: how to build the empty module on the other side ------------------------------------
def _dtype_of(module: nn.Module):
    return NUMPY_DTYPE[next(module.parameters()).dtype]


def _rnn_options(rnn) -> dict:
    """The recurrent layer's options, read alike from a scratch or a torch layer."""
    options = dict(num_layers=rnn.num_layers, bias=rnn.bias, batch_first=rnn.batch_first,
                   dropout=rnn.dropout, bidirectional=rnn.bidirectional)
    if getattr(rnn, "nonlinearity", "tanh") != "tanh":
        options["nonlinearity"] = rnn.nonlinearity
    return options


register_twin(
    "Linear", nn.Linear,
    lambda m: nn.Linear(m.in_features, m.out_features, bias=m.bias),
    lambda t: scratch.Linear(t.in_features, t.out_features, bias=t.bias is not None,
                             dtype=_dtype_of(t)),
)
register_twin(
    "Embedding", nn.Embedding,
    lambda m: nn.Embedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx),
    lambda t: scratch.Embedding(t.num_embeddings, t.embedding_dim, padding_idx=t.padding_idx,
                                dtype=_dtype_of(t)),
)
register_twin(
    "SimpleRNN", TorchSimpleRNN,
    lambda m: TorchSimpleRNN(m.rnn.input_size, m.rnn.hidden_size, m.head.out_features, m.kind,
                             **_rnn_options(m.rnn)),
    lambda t: scratch.SimpleRNN(t.rnn.input_size, t.rnn.hidden_size, t.head.out_features,
                                _kind_of(t.rnn), dtype=_dtype_of(t), **_rnn_options(t.rnn)),
)
register_twin(
    "CharLM", TorchCharLM,
    lambda m: TorchCharLM(m.vocab_size, m.embedding.embedding_dim, m.rnn.hidden_size, m.kind,
                          m.rnn.num_layers, m.rnn.dropout, m.rnn.batch_first),
    lambda t: scratch.CharLM(t.head.out_features, t.embedding.embedding_dim,
                             t.rnn.hidden_size, _kind_of(t.rnn), t.rnn.num_layers,
                             t.rnn.dropout, t.rnn.batch_first, dtype=_dtype_of(t)),
)


# -- training, as torch users write it ---------------------------------------------------------
def detach(state):
    """The TBPTT cut on the torch side: the state's values without its graph."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def train_step(model, optimizer, loss_fn, inputs, targets, hx=None, *, max_norm=None,
               clip_value=None, **forward_kwargs):
    """One update, as scratch.tbptt.train_step: zero_grad, forward, loss, backward, clip,
    step. loss_fn(output, targets) -> scalar tensor. Returns (loss as a float, h_n)."""
    optimizer.zero_grad()
    output, h_n = model(inputs, hx, **forward_kwargs)
    loss = loss_fn(output, targets)
    loss.backward()
    if max_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    if clip_value is not None:
        nn.utils.clip_grad_value_(model.parameters(), clip_value)
    optimizer.step()
    return loss.item(), h_n


def train_tbptt(model, optimizer, loss_fn, input_chunks, target_chunks, hx=None, *,
                max_norm=None, clip_value=None):
    """One update per chunk, the state carried across chunks and detached at each cut.
    Returns (the loss of each chunk, the state after the last chunk)."""
    losses = []
    state = hx
    for x_k, y_k in zip(input_chunks, target_chunks, strict=True):
        loss, h_n = train_step(model, optimizer, loss_fn, x_k, y_k, state,
                               max_norm=max_norm, clip_value=clip_value)
        losses.append(loss)
        state = detach(h_n)
    return losses, state


@torch.no_grad()
def generate(model: TorchCharLM, prompt, length: int, rng: np.random.Generator,
             temperature: float = 1.0) -> np.ndarray:
    """torch twin of scratch.CharLM.generate: the same draws from the same uniforms."""
    was_training = model.training
    model.eval()
    try:
        logits, h = model(torch.as_tensor(np.asarray(prompt), dtype=torch.int64))
        new = np.empty(length, dtype=np.int64)
        for k in range(length):
            new[k] = sample_from_logits(logits[-1].numpy(), rng.random(), temperature)
            logits, h = model(torch.as_tensor(new[k:k + 1]), h)
    finally:
        model.train(was_training)
    return new
