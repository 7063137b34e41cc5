"""The newcomer's model, trained on both sides: predict the next value of a noisy sine.

A SimpleRNN (a recurrent layer whose last hidden state feeds a Linear head) reads a window of
past values and predicts the value that follows. The scratch model and its torch twin start
from the same weights, see the same batches and take the same Adam steps (gradients clipped to
norm 1); the picture shows their loss curves on top of each other, how far apart they are,
and what the trained models predict on a stretch of the series neither saw.

    python -m examples.sequence_regression [--kind rnn|lstm|gru] [--steps N] [--seed S]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import scratch
import torch_impl
from examples._common import gap_title, make_parser, parse, plt, save
from scratch.tbptt import train_step
from torch_impl import models as torch_models

WINDOW = 24  # values the model reads
BATCH = 32
HIDDEN = 32


def noisy_sine(rng: np.random.Generator, length: int) -> np.ndarray:
    """Two sines (periods 25 and 9 steps) plus Gaussian noise of standard deviation 0.1."""
    t = np.arange(length)
    clean = np.sin(2 * np.pi * t / 25) + 0.5 * np.sin(2 * np.pi * t / 9 + 1.0)
    return clean + 0.1 * rng.standard_normal(length)


def windows(series: np.ndarray, starts: np.ndarray):
    """Inputs (WINDOW, B, 1), time-major, and the value after each window (B, 1)."""
    x = np.stack([series[s:s + WINDOW] for s in starts], axis=1)[:, :, None]
    y = series[starts + WINDOW][:, None]
    return x, y


def main(argv=None) -> dict:
    parser = make_parser("sequence_regression", __doc__.splitlines()[0], 1000,
                         "training updates")
    parser.add_argument("--kind", choices=["rnn", "lstm", "gru"], default="gru")
    args = parse(parser, argv)
    rng = np.random.default_rng(args.seed)
    series = noisy_sine(rng, 3000)
    train, held_out = series[:2400], series[2400:]

    model = scratch.SimpleRNN(1, HIDDEN, 1, kind=args.kind, seed=args.seed)
    twin = torch_impl.to_torch(model)
    optimizer = scratch.Adam(model, lr=0.01)
    optimizer_t = torch.optim.Adam(twin.parameters(), lr=0.01)
    mse = scratch.MSELoss()
    losses, losses_t = [], []
    bar = tqdm(range(args.steps), desc=f"{args.kind} scratch | torch")
    for _ in bar:
        x, y = windows(train, rng.integers(0, len(train) - WINDOW, size=BATCH))
        loss, _ = train_step(model, optimizer, mse.loss_and_grad, x, y, max_norm=1.0)
        loss_t, _ = torch_models.train_step(twin, optimizer_t, F.mse_loss, torch.as_tensor(x),
                                            torch.as_tensor(y), max_norm=1.0)
        losses.append(float(loss))
        losses_t.append(loss_t)
        bar.set_postfix_str(f"loss {loss:.4f} | {loss_t:.4f}", refresh=False)

    starts = np.arange(len(held_out) - WINDOW)
    x_test, y_test = windows(held_out, starts)
    pred, _ = model(x_test)
    with torch.no_grad():
        pred_t = twin(torch.as_tensor(x_test))[0].numpy()
    test_mse = float(np.mean((pred - y_test) ** 2))
    params = model.state_dict()
    param_diff = max(float(np.max(np.abs(params[k] - v.detach().numpy())))
                     for k, v in twin.named_parameters())
    print(f"final training loss: scratch {losses[-1]:.6f}, torch {losses_t[-1]:.6f}; "
          f"held-out MSE {test_mse:.4f} (noise alone: 0.0100); "
          f"largest parameter difference {param_diff:.1e}")

    fig, (ax_loss, ax_diff, ax_pred) = plt.subplots(
        3, 1, figsize=(9, 10), gridspec_kw={"height_ratios": [3, 1.5, 3]},
        layout="constrained")
    steps = np.arange(1, args.steps + 1)
    ax_loss.plot(steps, losses, lw=2.5, color="tab:blue", label="scratch (NumPy)")
    ax_loss.plot(steps, losses_t, lw=1, ls="--", color="tab:orange", label="torch")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("MSE loss of the batch")
    ax_loss.set_title(f"SimpleRNN(kind={args.kind!r}) learning the next value of a noisy sine:"
                      "\nthe same weights, batches and Adam steps on both sides")
    ax_loss.legend()
    gap = np.abs(np.array(losses) - np.array(losses_t))
    ax_diff.semilogy(steps, np.maximum(gap, 1e-18), ".", ms=3, color="tab:red")
    ax_diff.set_ylim(1e-18, 1e-6)
    ax_diff.set_ylabel("|scratch - torch|")
    ax_diff.set_xlabel("update")
    ax_diff.set_title(gap_title(gap), fontsize=10)
    shown = slice(0, 150)
    ax_pred.plot(y_test[shown, 0], color="black", lw=1, label="held-out series")
    ax_pred.plot(pred[shown, 0], lw=2.5, color="tab:blue", label="scratch prediction")
    ax_pred.plot(pred_t[shown, 0], lw=1, ls="--", color="tab:orange",
                 label="torch prediction")
    ax_pred.set_xlabel("time step")
    ax_pred.set_title(f"one step ahead on unseen data (MSE {test_mse:.4f}; the noise alone "
                      "is 0.0100)", fontsize=10)
    ax_pred.legend(loc="upper right")
    save(fig, args.out)
    return {"losses": losses, "losses_torch": losses_t, "param_diff": param_diff,
            "test_mse": test_mse, "out": args.out}


if __name__ == "__main__":
    main()
