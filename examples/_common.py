"""What the examples share: the command line, the output path, matplotlib without a display."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # see examples/__init__.py


def make_parser(name: str, description: str, steps: int, steps_help: str):
    """The options every example takes: --out, --seed, --steps."""
    parser = argparse.ArgumentParser(prog=f"python -m examples.{name}", description=description)
    parser.add_argument("--out", type=Path, default=Path("out") / f"{name}.png",
                        help="where to write the PNG (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and data")
    parser.add_argument("--steps", type=int, default=steps,
                        help=f"{steps_help} (default: %(default)s)")
    return parser


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    return args


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def gap_title(gap) -> str:
    """What the |scratch - torch| panel of a training example shows, in words."""
    largest = float(max(gap))
    if largest < 1e-13:
        return (f"the loss curves differ by rounding only (largest {largest:.0e}; "
                "0 is plotted at 1e-18)")
    return (f"the curves start equal to rounding (~1e-16; 0 is plotted at 1e-18), and the "
            f"training dynamics amplify it: {largest:.0e} at most")
