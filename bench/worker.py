"""One side of the benchmark in a process of its own, timed block by block when asked.

    python -m bench.worker scratch THREADS [TREE]   scratch, imported from the checkout TREE
                                                    (default: this one), and its
                                                    matrix-product floor; torch never loads
    python -m bench.worker torch THREADS            torch.nn; NumPy multiplies no matrix here

This is how the headline figures are taken: scratch and torch each alone in a process of its
own, so that neither library's idle threads (OpenBLAS's spin after every product) sit in the
other's process, and their blocks still interleaved round by round by the parent
(bench.timing.interleaved), so that a slow spell of the shared machine hits every side alike.
Two scratch workers of two checkouts time an old tree against a new one the same way.

The parent (bench.runner, through Worker) writes one JSON request a line to the worker's
stdin and reads one JSON answer a line from its stdout; between requests the worker sleeps on
its stdin. Requests: {"op": "info"}; {"op": "prepare", "case": {...}, "names": [...]} builds
the calls of one case ("scratch" and "floor", or "torch"); {"op": "warm_up", "name": N} and
{"op": "block", "name": N, "number": n, "short": b} time them, in the worker; {"op":
"release"} drops the case; {"op": "quit"}. An answer with "error" reports a failed request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path
from typing import IO

from bench.env import numpy_info, pin_threads, torch_info, use_tree

ROOT = Path(__file__).resolve().parent.parent


class Worker:
    """A worker process, seen from the parent: ask() sends a request and returns the answer."""

    def __init__(self, side: str, threads: int, tree: str | Path | None = None):
        command = [sys.executable, "-m", "bench.worker", side, str(threads)]
        if tree is not None:
            command.append(str(tree))
        self.side = side if tree is None else f"{side} ({tree})"
        self.info: dict = {}  # its libraries, once asked ("info")
        # stderr is the parent's: a worker's errors and warnings show where the run's do
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, cwd=ROOT, bufsize=1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def ask(self, op: str, **fields) -> dict:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(dict(fields, op=op)) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it has exited; the empty answer below says so
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.side} worker exited (status {self.process.wait()}) "
                               f"on {op!r}; its error is printed above")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the {self.side} worker failed on {op!r}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.ask("quit")
            except (RuntimeError, OSError, ValueError):
                pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RemoteSide:
    """One of a worker's calls, as bench.timing.interleaved sees a side."""

    def __init__(self, worker: Worker, name: str):
        self.worker, self.name = worker, name

    def warm_up(self) -> float:
        return self.worker.ask("warm_up", name=self.name)["seconds"]

    def block(self, number: int, short: bool) -> float:
        return self.worker.ask("block", name=self.name, number=number, short=short)["seconds"]


def serve(side: str, threads: int, tree: str | None, requests: IO[str],
          answers: IO[str]) -> None:
    pin_threads(threads)
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
    if side == "scratch":
        info = {"side": side, "scratch_file": use_tree(tree), **numpy_info()}
    elif side == "torch":
        if tree is not None:
            raise SystemExit("the torch worker takes no tree")
        import torch

        torch.set_num_threads(threads)
        info = {"side": side, **torch_info()}
    else:
        raise SystemExit(f"SIDE must be scratch or torch, got {side!r}")
    from bench.cases import Case, floor_step, scratch_step, torch_step
    from bench.timing import LocalSide

    makers = ({"scratch": scratch_step, "floor": floor_step} if side == "scratch"
              else {"torch": torch_step})
    steps: dict[str, LocalSide] = {}
    while True:
        line = requests.readline()
        if not line:
            return
        request = json.loads(line)
        op = request.get("op")
        answer: dict = {}
        try:
            if op == "info":
                answer = info
            elif op == "prepare":
                steps = {}  # the last case's arrays go before the next one's are made
                case = Case(**request["case"])
                steps = {name: LocalSide(makers[name](case)) for name in request["names"]}
            elif op == "warm_up":
                answer = {"seconds": steps[request["name"]].warm_up()}
            elif op == "block":
                answer = {"seconds": steps[request["name"]].block(request["number"],
                                                                  request["short"])}
            elif op == "release":
                steps = {}
            elif op == "quit":
                answers.write("{}\n")
                answers.flush()
                return
            else:
                answer = {"error": f"unknown op {op!r}"}
        except Exception as error:  # the parent reports it and stops the run
            traceback.print_exc()
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    # The answers get the real stdout; anything a library prints goes to stderr instead.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    serve(argv[0], int(argv[1]), argv[2] if len(argv) == 3 else None, sys.stdin, answers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
