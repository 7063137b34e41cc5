"""A character-level language model learns a page of Alice, in scratch and in torch at once.

The text (examples/data/alice.txt, the opening of "Alice's Adventures in Wonderland") is cut
into BATCH streams that are read side by side, CHUNK characters at a time, with truncated BPTT:
one update per chunk, the LSTM state carried from each chunk into the next, the gradient cut
between them (``scratch.tbptt.train_tbptt``; ``detach()`` on the torch side). Each pass over
the text starts from a zero state. Both sides start from the same weights; every so often each
writes a sample from the same prompt with the same random draws, and the two samples come out
letter for letter the same. The picture shows both loss curves, their difference, and the
final samples.

    python -m examples.char_lm [--kind rnn|lstm|gru] [--steps N] [--seed S]
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from textwrap import fill

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

import scratch
import torch_impl
from examples._common import gap_title, make_parser, parse, plt, save
from scratch.losses import flat_cross_entropy
from scratch.tbptt import split_chunks, train_tbptt
from torch_impl import models as torch_models

TEXT = Path(__file__).parent / "data" / "alice.txt"
BATCH = 8  # streams read side by side
CHUNK = 32  # characters per update (the truncation length)
EMBEDDING, HIDDEN = 16, 128
PROMPT = "Alice "


def load_text(path: Path = TEXT) -> str:
    """The text without its header lines (those starting with '#')."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("#"))


def streams(ids: np.ndarray, batch: int):
    """BATCH contiguous streams (L, B) of inputs and of targets (the next character)."""
    L = (len(ids) - 1) // batch
    x = ids[:L * batch].reshape(batch, L).T  # (L, B): column b is stream b
    y = ids[1:L * batch + 1].reshape(batch, L).T
    return x, y


def lm_loss(logits, targets):
    """torch side of flat_cross_entropy: cross-entropy at every position."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def main(argv=None) -> dict:
    parser = make_parser("char_lm", __doc__.splitlines()[0], 1000,
                         "training updates (one per chunk of text)")
    parser.add_argument("--kind", choices=["rnn", "lstm", "gru"], default="lstm")
    parser.add_argument("--sample-every", type=int, default=250,
                        help="print samples every N updates (default: %(default)s)")
    args = parse(parser, argv)
    text = load_text()
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = np.array([index[ch] for ch in text], dtype=np.int64)
    x, y = streams(ids, BATCH)
    xs, ys = split_chunks(x, CHUNK), split_chunks(y, CHUNK)  # one pass over the text
    xs_t, ys_t = [torch.as_tensor(c) for c in xs], [torch.as_tensor(c) for c in ys]
    print(f"{len(text)} characters, {len(vocab)} distinct; {BATCH} streams of {x.shape[0]}, "
          f"{len(xs)} chunks of {CHUNK} per pass")

    model = scratch.CharLM(len(vocab), EMBEDDING, HIDDEN, kind=args.kind, seed=args.seed)
    twin = torch_impl.to_torch(model)
    optimizer = scratch.Adam(model, lr=3e-3)
    optimizer_t = torch.optim.Adam(twin.parameters(), lr=3e-3)
    loss_and_grad = partial(flat_cross_entropy, scratch.CrossEntropyLoss())
    prompt = np.array([index[ch] for ch in PROMPT])

    def samples(length=160):
        ours = model.generate(prompt, length, np.random.default_rng(args.seed), 0.7)
        theirs = torch_models.generate(twin, prompt, length,
                                       np.random.default_rng(args.seed), 0.7)
        return (PROMPT + "".join(vocab[i] for i in ours),
                PROMPT + "".join(vocab[i] for i in theirs))

    losses: list[float] = []
    losses_t: list[float] = []
    history = []  # (updates, scratch sample, torch sample)
    bar = tqdm(total=args.steps, desc=f"{args.kind} scratch | torch")
    while len(losses) < args.steps:
        n = min(len(xs), args.steps - len(losses))  # one pass, or what is left of it
        pass_losses, _ = train_tbptt(model, optimizer, loss_and_grad, xs[:n], ys[:n],
                                     max_norm=1.0)
        pass_losses_t, _ = torch_models.train_tbptt(twin, optimizer_t, lm_loss, xs_t[:n],
                                                    ys_t[:n], max_norm=1.0)
        before = len(losses)
        losses += [float(v) for v in pass_losses]
        losses_t += pass_losses_t
        bar.update(n)
        bar.set_postfix_str(f"loss {losses[-1]:.3f} | {losses_t[-1]:.3f}", refresh=False)
        if before // args.sample_every != len(losses) // args.sample_every:
            ours, theirs = samples()
            history.append((len(losses), ours, theirs))
            bar.write(f"\n-- after {len(losses)} updates --\nscratch: {ours!r}\n"
                      f"torch:   {theirs!r}")
    bar.close()

    ours, theirs = samples()
    if not history or history[-1][0] != len(losses):
        history.append((len(losses), ours, theirs))
    params = model.state_dict()
    param_diff = max(float(np.max(np.abs(params[k] - v.detach().numpy())))
                     for k, v in twin.named_parameters())
    print(f"final loss: scratch {losses[-1]:.6f}, torch {losses_t[-1]:.6f}; largest "
          f"parameter difference {param_diff:.1e}; samples identical: {ours == theirs}")

    fig, (ax_loss, ax_diff, ax_text) = plt.subplots(
        3, 1, figsize=(9, 10), gridspec_kw={"height_ratios": [3, 1.3, 1.8]},
        layout="constrained")
    steps = np.arange(1, len(losses) + 1)
    ax_loss.plot(steps, losses, lw=2.5, color="tab:blue", label="scratch (NumPy)")
    ax_loss.plot(steps, losses_t, lw=1, ls="--", color="tab:orange", label="torch")
    ax_loss.axhline(np.log(len(vocab)), color="gray", lw=0.8, ls=":")
    ax_loss.text(steps[-1], np.log(len(vocab)), "uniform guess ", ha="right", va="bottom",
                 color="gray", fontsize=9)
    ax_loss.set_ylabel("cross-entropy per character (nats)")
    ax_loss.set_title(f"CharLM(kind={args.kind!r}) on a page of Alice, truncated BPTT over "
                      f"chunks of {CHUNK}:\nthe same weights, chunks and Adam steps on both sides")
    ax_loss.legend()
    gap = np.abs(np.array(losses) - np.array(losses_t))
    ax_diff.semilogy(steps, np.maximum(gap, 1e-18), ".", ms=3, color="tab:red")
    ax_diff.set_ylim(1e-18, 1e-6)
    ax_diff.set_ylabel("|scratch - torch|")
    ax_diff.set_xlabel("update")
    ax_diff.set_title(gap_title(gap), fontsize=10)
    ax_text.axis("off")
    lines = ["Samples from the prompt 'Alice ' (temperature 0.7, the same uniforms on both "
             "sides):"]
    for updates, sample, sample_t in history[-3:]:
        same = "the same" if sample == sample_t else "DIFFERENT"
        lines += ["", f"after {updates} updates, scratch and torch {same}:",
                  fill(sample, 95)]
    if ours != theirs:
        lines += ["", "torch:", fill(theirs, 95)]
    ax_text.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8.5,
                 transform=ax_text.transAxes)
    save(fig, args.out)
    return {"losses": losses, "losses_torch": losses_t, "param_diff": param_diff,
            "samples": (ours, theirs), "out": args.out}


if __name__ == "__main__":
    main()
