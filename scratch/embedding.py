"""A lookup table of vectors, torch.nn.Embedding's semantics, with its backward pass.

    y[...] = W[idx[...]]           idx (...) ints in 0..num_embeddings-1, y (..., embedding_dim)

Backward: the gradient of a row is the sum of dy over every position that looked it up,

    dW[k] = sum over positions p with idx[p] == k of dy[p]      (np.add.at does the sum)

The padding row (``padding_idx``) starts at zero and gets no gradient, so no optimizer moves it
(but weight decay, which reads the weights and not the gradient, would: as in torch).
"""

from __future__ import annotations

import numbers

import numpy as np

from scratch._checks import check_array, check_positive_int, check_shape
from scratch.module import Module, check_dtype


class Embedding(Module):
    """Rows of ``weight`` (num_embeddings, embedding_dim) looked up by integer index.

    Init as torch: every entry from N(0, 1) drawn from ``self.rng``; the padding row is then
    set to zero. A negative padding_idx counts from the end, as in torch.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 *, dtype=np.float64, seed: int | None = None) -> None:
        super().__init__()
        check_positive_int("num_embeddings", num_embeddings)
        check_positive_int("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
                raise TypeError(f"padding_idx must be an int or None, got {padding_idx!r}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx must be within [-{num_embeddings}, "
                                 f"{num_embeddings}), got {padding_idx}")
            padding_idx = int(padding_idx) % num_embeddings
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = padding_idx
        self.dtype = check_dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.register_parameter("weight", np.zeros((num_embeddings, embedding_dim), self.dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        weight = self._parameters["weight"]
        weight[...] = self.rng.standard_normal(weight.shape)
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0.0

    def __repr__(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}{pad})"

    def forward(self, input: np.ndarray) -> np.ndarray:
        """input: integer array of any shape (...) -> (..., embedding_dim)."""
        idx = np.asarray(input)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: input must hold integer indices, got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise ValueError(
                f"Embedding: every index must be in 0..{self.num_embeddings - 1}, got values "
                f"from {idx.min()} to {idx.max()}"
            )
        self._save_for_backward(idx)  # the indices, for the rows of dW
        return self._parameters["weight"][idx]  # (..., embedding_dim), a copy

    def backward(self, grad_output: np.ndarray) -> None:
        """Add dL/dW into ``self.grads``. Indices have no gradient, so nothing is returned."""
        idx = self._saved_for_backward()
        dy = check_array("grad_output", grad_output, self.dtype)
        check_shape("grad_output", dy, idx.shape + (self.embedding_dim,))
        self._release_saved()
        rows = idx.reshape(-1)  # (N,)
        dy_2d = dy.reshape(-1, self.embedding_dim)  # (N, embedding_dim)
        if self.padding_idx is not None:
            looked_up = rows != self.padding_idx
            rows, dy_2d = rows[looked_up], dy_2d[looked_up]
        np.add.at(self._grads["weight"], rows, dy_2d)  # dW[k] += dy[p] for idx[p] == k
