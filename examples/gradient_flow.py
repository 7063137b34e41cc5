"""Vanishing and exploding gradients made visible: ||dL/dh_t|| against the distance from the loss.

A loss reads the last hidden state only, L = w . h_T (w random, |w| = 1), so dL/dh_T = w. Going
back one step multiplies the gradient by that step's Jacobian,

    dL/dh_{t-1} = dL/dh_t  dh_t/dh_{t-1},

and T steps back it has gone through T of them: the norm shrinks or grows roughly
geometrically with the distance from the loss. How fast depends on the cell and on the size of
its recurrent weights. Each panel is one cell (RNN with tanh, RNN with relu, LSTM, GRU); each
line one weight scale s: torch's init U(-1/sqrt(H), 1/sqrt(H)) for every weight, times s. The
line is the median over a batch of random input sequences. One more LSTM line opens the forget
gate (its bias + 3, so f ~ 0.95): the cell state then carries the gradient far back, which is
what the LSTM was designed for and why its forget bias is often initialized positive.

The loop is written with the functional step API (``scratch.functional``), which hands back
dL/dh_{t-1} at every step; ``scratch.RNN.backward`` returns only the first one, dL/dh_0.

    python -m examples.gradient_flow [--steps T] [--seed S]
"""

from __future__ import annotations

import numpy as np

import scratch
from examples._common import make_parser, parse, plt, save
from scratch.functional import (
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
)

CELLS = [("RNN, tanh", "RNN_TANH"), ("RNN, relu", "RNN_RELU"), ("LSTM", "LSTM"),
         ("GRU", "GRU")]
SCALES = [0.5, 1.0, 2.0, 4.0]
FORGET_BIAS = 3.0  # added to the LSTM's forget-gate bias in one extra line
INPUT, HIDDEN, BATCH = 8, 64, 32


def make_layer(mode: str, scale: float, seed: int) -> scratch.RNNBase:
    """A one-layer scratch RNN/LSTM/GRU with torch's init, every weight times ``scale``."""
    if mode == "LSTM":
        layer: scratch.RNNBase = scratch.LSTM(INPUT, HIDDEN, seed=seed)
    elif mode == "GRU":
        layer = scratch.GRU(INPUT, HIDDEN, seed=seed)
    else:
        layer = scratch.RNN(INPUT, HIDDEN, nonlinearity="tanh" if mode == "RNN_TANH" else "relu",
                            seed=seed)
    for _, param in layer.named_parameters():
        param *= scale
    return layer


def grad_norms_by_distance(layer: scratch.RNNBase, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """||dL/dh_t|| for L = sum over the batch of w . h_T, from h_0 = 0.

    x: (T, B, I), w: (H,). Returns (T + 1, B): row k is ||dL/dh_{T-k}|| of each sequence, so
    row 0 is at the loss and row T at the initial state.
    """
    p = dict(layer.named_parameters())
    W_ih, W_hh, b_ih, b_hh = p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]
    T, B, _ = x.shape
    x_proj = x @ W_ih.T + b_ih  # (T, B, G*H): every step's input share at once
    h = np.zeros((B, HIDDEN))
    c = np.zeros((B, HIDDEN))
    caches = []
    with np.errstate(over="ignore", invalid="ignore"):  # relu at large scales overflows
        for t in range(T):  # forward, keeping each step's cache
            if layer.mode == "LSTM":
                h, c, cache = lstm_step_forward(x_proj[t], h, c, W_hh, b_hh)
            elif layer.mode == "GRU":
                h, cache = gru_step_forward(x_proj[t], h, W_hh, b_hh)
            else:
                h, cache = rnn_step_forward(x_proj[t], h, W_hh, b_hh,
                                            "tanh" if layer.mode == "RNN_TANH" else "relu")
            caches.append(cache)

        dh = np.broadcast_to(w, (B, HIDDEN)).copy()  # dL/dh_T
        dc = np.zeros((B, HIDDEN))  # the loss reads h_T only, not c_T
        norms = [np.linalg.norm(dh, axis=1)]
        for t in reversed(range(T)):  # backward: dL/dh_t -> dL/dh_{t-1}
            if layer.mode == "LSTM":
                _, dh, dc = lstm_step_backward(dh, dc, caches[t], W_hh)
            elif layer.mode == "GRU":
                _, _, dh = gru_step_backward(dh, caches[t], W_hh)
            else:
                _, dh = rnn_step_backward(dh, caches[t], W_hh)
            norms.append(np.linalg.norm(dh, axis=1))
    return np.stack(norms)  # (T + 1, B)


def spectral_radius(layer: scratch.RNNBase) -> float:
    W_hh = dict(layer.named_parameters())["weight_hh_l0"]
    return float(np.max(np.abs(np.linalg.eigvals(W_hh))))


def draw(steps: int, seed: int) -> tuple:
    """The four panels: ||dL/dh_t|| against the distance from the loss, for each cell and
    scale s of torch's init, on axes that hold every curve. Returns (figure, medians, the
    tanh RNN's spectral radii)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, BATCH, INPUT))
    w = rng.standard_normal(HIDDEN)
    w /= np.linalg.norm(w)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), sharex=True, layout="constrained")
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(SCALES)))
    distance = np.arange(steps + 1)
    medians: dict = {}
    radii: dict = {}
    for ax, (title, mode) in zip(axes.flat, CELLS):
        runs = [(scale, make_layer(mode, scale, seed)) for scale in SCALES]
        if mode == "LSTM":  # an open forget gate (f = sigmoid(3 + ...) ~ 0.95)
            layer = make_layer(mode, 1.0, seed)
            dict(layer.named_parameters())["bias_ih_l0"][HIDDEN:2 * HIDDEN] += FORGET_BIAS
            runs.append((f"1, forget bias +{FORGET_BIAS:g}", layer))
        for (scale, layer), color in zip(runs, [*colors, "tab:red"]):
            median = np.median(grad_norms_by_distance(layer, x, w), axis=1)  # (T + 1,)
            medians[(mode, scale)] = median
            label = f"s = {scale:g}" if isinstance(scale, float) else f"s = {scale}"
            if mode == "RNN_TANH":
                radii[scale] = spectral_radius(layer)
            if mode.startswith("RNN"):
                W_hh = dict(layer.named_parameters())["weight_hh_l0"]
                label += f"  (radius {spectral_radius(layer):.2f}, largest singular " \
                         f"value {np.linalg.norm(W_hh, 2):.2f})"
            shown = np.where(np.isfinite(median) & (median > 0), median, np.nan)
            ax.semilogy(distance, shown, color=color, lw=2, label=label,
                        ls="--" if isinstance(scale, str) else "-")
        drawn = np.concatenate([m for (kind, _), m in medians.items() if kind == mode])
        drawn = drawn[np.isfinite(drawn) & (drawn > 0)]
        ax.set_ylim(drawn.min() / 30, drawn.max() * 30)  # every curve inside
        ax.axhline(1.0, color="gray", lw=0.8, ls=":")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="lower left")  # below the curves, which fall from (0, 1)
        ax.grid(alpha=0.3, which="major", axis="y")
    for ax in axes[1]:
        ax.set_xlabel("distance from the loss, T - t (steps)")
    for ax in axes[:, 0]:
        ax.set_ylabel("||dL/dh_t|| (median over the batch)")
    fig.suptitle("Vanishing and exploding gradients: L = w . h_T, weights = torch's init x s "
                 f"(H = {HIDDEN}, T = {steps}); each panel has its own scale")
    return fig, medians, radii


def main(argv=None) -> dict:
    parser = make_parser("gradient_flow", __doc__.splitlines()[0], 100,
                         "sequence length T: how far back the gradient travels")
    args = parse(parser, argv)
    fig, medians, _ = draw(args.steps, args.seed)
    save(fig, args.out)
    for (mode, scale), median in medians.items():
        print(f"{mode:9s} s={scale:<4} ||dL/dh|| at the loss {median[0]:.2e}, "
              f"{args.steps} steps back {median[-1]:.2e}")
    return {"medians": medians, "out": args.out}


if __name__ == "__main__":
    main()
