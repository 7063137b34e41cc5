"""What the benchmark times: the cases, and how each side runs one forward plus backward.

A case is a layer kind, a dtype, a size (T, B, I, H) and a stacking (layers x directions).
Both sides get the same input, the same upstream gradient and (for the in-process pair) the
same weights; each call is one full training-step's worth of recurrent work: forward, then
backward to the input and to every parameter.

This module imports NumPy, and torch and scratch only inside the functions that need them, so
that a scratch process never loads torch, a torch process never loads scratch, and a process
can choose which checkout's scratch it imports (bench.env.use_tree) before it does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str  # one of KINDS
    dtype: str  # "float32" or "float64"
    T: int
    B: int
    I: int
    H: int
    layers: int = 1
    directions: int = 1

    @property
    def size(self) -> tuple[int, int, int, int]:
        return (self.T, self.B, self.I, self.H)

    @property
    def proj_size(self) -> int:
        """lstmp projects h to H // 2 (torch's proj_size), the other kinds not at all."""
        return self.H // 2 if self.kind == "lstmp" else 0

    @property
    def h_out(self) -> int:
        return self.proj_size or self.H

    @property
    def stacking(self) -> str:
        return f"{self.layers}x{self.directions}"

    def label(self) -> str:
        return (f"{self.kind} {self.dtype} ({self.T},{self.B},{self.I},{self.H}) "
                f"{self.stacking}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def module_kwargs(case: Case) -> dict:
    """Constructor arguments shared by scratch's and torch's layer (input_size, hidden_size
    and the options), the class name, for both libraries."""
    kwargs: dict = dict(num_layers=case.layers, bidirectional=case.directions == 2)
    if case.proj_size:
        kwargs["proj_size"] = case.proj_size
    return kwargs


# the mode of each kind, in scratch's and torch's words (lstmp is an LSTM with proj_size)
MODE = {"rnn": "RNN_TANH", "lstm": "LSTM", "lstmp": "LSTM", "gru": "GRU"}


def class_name(case: Case) -> str:
    return MODE[case.kind].partition("_")[0]


def make_data(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The input (T, B, I) and the upstream gradient of the output (T, B, D*H_out), drawn in
    float64 and cast (the same numbers for both dtypes)."""
    rng = np.random.default_rng(12345)
    x = rng.standard_normal((case.T, case.B, case.I))
    grad_output = rng.standard_normal((case.T, case.B, case.directions * case.h_out))
    return x.astype(case.dtype), grad_output.astype(case.dtype)


def build_scratch(case: Case):
    import scratch

    cls = getattr(scratch, class_name(case))
    return cls(case.I, case.H, dtype=np.dtype(case.dtype), seed=0, **module_kwargs(case))


def scratch_step(case: Case, module=None) -> Callable[[], None]:
    """One forward + backward of scratch for this case."""
    module = build_scratch(case) if module is None else module
    x, grad_output = make_data(case)

    def run() -> None:
        module.forward(x)
        module.backward(grad_output)

    return run


def torch_step(case: Case, scratch_module=None) -> Callable[[], None]:
    """One forward + backward of torch.nn for this case: the twin of scratch_module (same
    weights) when given, else a fresh torch.nn layer. The input's gradient is computed too,
    as scratch always computes it."""
    import torch

    if scratch_module is not None:
        from torch_impl import to_torch

        module = to_torch(scratch_module)
    else:
        cls = getattr(torch.nn, class_name(case))
        module = cls(case.I, case.H, **module_kwargs(case)).to(getattr(torch, case.dtype))
    x_np, grad_np = make_data(case)
    x = torch.from_numpy(x_np).requires_grad_(True)
    grad_output = torch.from_numpy(grad_np)

    def run() -> None:
        x.grad = None  # a fresh input gradient each call, as scratch returns a new one
        output, _ = module(x)
        output.backward(grad_output)

    return run


def floor_step(case: Case) -> Callable[[], None]:
    """The bare matrix products one forward + backward of scratch must do for this case,
    written into preallocated outputs: the floor under scratch's time.

    Per layer and direction: the input projection of all steps (one product), the recurrent
    product of every step forward and backward (and the projection's, with proj_size), and
    after the loop dW_hh, dW_ih, dW_hr and the input gradient (one product each).
    """
    from scratch.recurrent import GATES

    dt = np.dtype(case.dtype)
    rng = np.random.default_rng(0)
    T, B, H, P, D = case.T, case.B, case.H, case.proj_size, case.directions
    GH, H_out = GATES[MODE[case.kind]] * H, case.h_out
    TB = T * B

    def arr(*shape):
        return rng.standard_normal(shape).astype(dt)

    layers = []
    for layer in range(case.layers):
        I_layer = case.I if layer == 0 else D * H_out
        for _ in range(D):
            layers.append(dict(
                X=arr(TB, I_layer), W_ih=arr(GH, I_layer), W_hh=arr(GH, H_out),
                W_hr=arr(P, H) if P else None, h=arr(B, H_out), h_full=arr(B, H),
                gates=np.empty((B, GH), dt),  # as h_prev @ W_hh.T gives it
                dgates=arr(B, GH), dh=np.empty((B, H_out), dt),
                dh_full=np.empty((B, H), dt), x_proj=np.empty((TB, GH), dt),
                states=arr(TB, H_out), states_full=arr(TB, H), dh_all=arr(TB, H_out),
                dW_hh=np.empty((GH, H_out), dt), dW_ih=np.empty((GH, I_layer), dt),
                dW_hr=np.empty((P, H), dt) if P else None, dX=np.empty((TB, I_layer), dt),
            ))

    def run() -> None:
        for d in layers:
            np.matmul(d["X"], d["W_ih"].T, out=d["x_proj"])
            for _ in range(T):
                np.matmul(d["h"], d["W_hh"].T, out=d["gates"])
                if P:
                    np.matmul(d["h_full"], d["W_hr"].T, out=d["dh"])
            for _ in range(T):
                if P:
                    np.matmul(d["dh"], d["W_hr"], out=d["dh_full"])
                np.matmul(d["dgates"], d["W_hh"], out=d["dh"])
            np.matmul(d["x_proj"].T, d["states"], out=d["dW_hh"])
            np.matmul(d["x_proj"].T, d["X"], out=d["dW_ih"])
            np.matmul(d["x_proj"], d["W_ih"], out=d["dX"])
            if P:
                np.matmul(d["dh_all"].T, d["states_full"], out=d["dW_hr"])

    return run


def grid(kinds, dtypes, sizes, configs) -> list[Case]:
    return [Case(kind, dtype, *size, layers=layers, directions=directions)
            for size in sizes for kind in kinds for dtype in dtypes
            for layers, directions in configs]
