"""The command line of the benchmark, and the order of its parts.

    python -m bench [--quick] [--sizes T,B,I,H ...] [--kinds rnn,lstm,lstmp,gru]
                    [--dtypes float32,float64] [--configs 1x1,2x1,1x2,2x2] [--threads N]
                    [--rounds N] [--json PATH] [--tree PATH] [--baseline-tree PATH]
                    [--no-inprocess] [--no-scaling] [--no-memory] [--no-parity] [--no-floor]

Parts, in order: the headline, scratch / torch with each side alone in a process of its own
(forward + backward, blocks interleaved round by round, scratch's matrix-product floor in
scratch's process; with --baseline-tree an older checkout's scratch in a third process, in
the same rounds); the secondary in-process pair (scratch and its torch twin in this process,
1 layer x 1 direction); time against T; peak memory at the largest size (each side in a
fresh process); the parity harness's throughput; the targets. Threads are pinned before NumPy
or torch is imported, so nothing here imports either at module level.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from bench.env import pin_threads, use_tree


def _csv(choices):
    def parse(text: str) -> list[str]:
        words = [w.strip() for w in text.split(",") if w.strip()]
        bad = [w for w in words if w not in choices]
        if bad or not words:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {', '.join(choices)}, got {text!r}")
        return [c for c in choices if c in words]
    return parse


def _size(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"a size is T,B,I,H (four positive ints), got {text!r}")
    T, B, I, H = (int(p) for p in parts)
    return T, B, I, H


def _config(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([12])x([12])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"a stacking is LxD with L, D in 1, 2, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parser() -> argparse.ArgumentParser:
    from bench.choices import DTYPES, KINDS, SIZES

    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="scratch against torch.nn on the CPU: forward + backward, medians of "
                    "interleaved runs, the ratio scratch/torch, scratch's matrix-product "
                    "floor, time against T, peak memory, the parity harness's throughput.")
    p.add_argument("--quick", action="store_true",
                   help="the three smaller sizes, 1 layer x 1 direction, five rounds; time "
                        "against T (at B,I,H = 16,64,128) and peak memory for the float64 "
                        "LSTM only; no parity run: about two minutes on a 2-core machine")
    p.add_argument("--sizes", nargs="+", type=_size, default=None, metavar="T,B,I,H",
                   help="sizes to time (default: " + " ".join(
                       ",".join(map(str, s)) for s in SIZES) + ")")
    p.add_argument("--kinds", type=_csv(KINDS), default=list(KINDS),
                   help="comma-separated: rnn (tanh), lstm, lstmp (LSTM with proj_size = "
                        "H // 2), gru (default: all)")
    p.add_argument("--dtypes", type=_csv(DTYPES), default=list(DTYPES))
    p.add_argument("--configs", type=lambda t: [_config(w) for w in t.split(",")],
                   default=None, metavar="LxD,...",
                   help="layers x directions (default: 1x1,2x1,1x2,2x2; --quick: 1x1)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads for each side, NumPy's BLAS and torch alike (default: all "
                        "cores)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds per case (default: 7, 5 or 3 by the case's duration; "
                        "--quick: 5)")
    p.add_argument("--block-ms", type=float, default=30.0,
                   help="a short case is called repeatedly in blocks of at least this long "
                        "(default 30)")
    p.add_argument("--pause", type=float, default=None,
                   help="seconds to sleep after each block of scratch, so that OpenBLAS's "
                        "spinning threads sleep before torch runs (default: 0.15 with more "
                        "than one thread, else 0)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each case, wait up to this long for other processes to use "
                        "less than 0.3 cores (default 0: do not wait); on a shared machine, "
                        "say 60")
    p.add_argument("--scaling-size", type=lambda t: _size("1," + t)[1:], default=None,
                   metavar="B,I,H", help="B, I, H of the time-against-T series "
                   "(default 32,128,256, --quick 16,64,128; T = 100, 200, 400, 800)")
    p.add_argument("--memory-size", type=_size, default=SIZES[-1], metavar="T,B,I,H",
                   help="size of the peak-memory measurement (default: the largest)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH",
                   help="where to write the results (default: bench/results/bench-<time>.json)")
    p.add_argument("--tree", type=Path, default=None, metavar="PATH",
                   help="the checkout whose scratch is timed (default: this one); the "
                        "benchmark's own code stays this checkout's")
    p.add_argument("--baseline-tree", type=Path, default=None, metavar="PATH",
                   help="an older checkout (say a git worktree of an older commit) whose "
                        "scratch is timed in the same rounds, in a process of its own: the "
                        "run then reports new/old per case, their geometric mean, and each "
                        "tree against torch alone")
    parts = {"inprocess": "the secondary in-process pair",
             "floor": "scratch's matrix-product floor", "scaling": "time against T",
             "memory": "peak memory", "parity": "the parity harness's throughput"}
    for part, what in parts.items():
        p.add_argument(f"--no-{part}", action="store_true", help=f"leave out {what}")
    p.add_argument("--parity", action="store_true",
                   help="time the parity harness even with --quick")
    p.epilog = ("The full run (all sizes, kinds, dtypes and stackings) takes about 30 minutes "
                "on an idle 2-core machine, more with --baseline-tree; see "
                "docs/performance.md.")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads < 1:
        raise SystemExit("--threads must be at least 1")
    pin_threads(args.threads)
    # this process's scratch (the in-process pair) comes from the same tree as the headline's
    use_tree(args.tree.resolve() if args.tree is not None else None)
    if args.baseline_tree is not None and not (args.baseline_tree / "scratch").is_dir():
        raise SystemExit(f"--baseline-tree: {args.baseline_tree} has no scratch/ directory")
    from bench import runner

    return runner.run(args)


if __name__ == "__main__":
    sys.exit(main())
