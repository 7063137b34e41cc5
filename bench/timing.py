"""Timing: blocks of calls, interleaved between the sides, with pauses between them.

A side is timed in this process (LocalSide) or in a process of its own (bench.worker), which
runs one block when asked: the blocks interleave across processes just as within one.

A *block* is ``number`` back-to-back calls of one side, timed together; a case's figure for a
side is the median over its blocks of the time per call. Blocks of the sides alternate (in
the given order in even rounds, reversed in odd ones) so that a slow spell of the shared
machine hits every side alike, and each round gives one ratio scratch/torch: their spread is
the noise of the measurement.

The pause after each block matters when both libraries run threaded. OpenBLAS's idle worker
threads spin for about 2**28 TSC cycles (0.1 s here) after each product before they sleep;
torch's OpenMP workers spin too. A block of torch started while NumPy's workers still spin
shares the cores with them and reads several times slower than torch is, even when torch
runs in a process of its own. ``pause_after`` gives the spinning threads time to sleep. The
first call after a pause pays for waking the thread pools up; for short calls it runs untimed
before the block.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Protocol

SHORT_CALL = 0.01  # seconds: below this, a block starts with one untimed call


def time_block(run: Callable[[], None], number: int) -> float:
    """Seconds per call over `number` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(number):
        run()
    return (time.perf_counter() - start) / number


def warm_up(run: Callable[[], None], *, min_seconds: float = 0.05) -> float:
    """Call a few times (first-touch page faults, thread-pool start and oneDNN's kernel
    generation happen in the first calls); returns the median seconds of one call after the
    first. A call longer than a second is warmed up once."""
    first = time_block(run, 1)
    if first > 1.0:
        return first
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_seconds and len(times) < 1000):
        times.append(time_block(run, 1))
    return statistics.median(times)


def plan(seconds_per_call: float, block_seconds: float, rounds: int | None,
         quick: bool) -> tuple[int, int]:
    """(number of calls per block, number of rounds) for a call of this duration."""
    number = max(1, math.ceil(block_seconds / max(seconds_per_call, 1e-7)))
    if rounds is None:
        block = seconds_per_call * number
        rounds = 5 if quick else (7 if block < 0.5 else 5 if block < 3.0 else 3)
    return number, rounds


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile); with fewer than 4 values (min, median, max)."""
    values = sorted(values)
    if len(values) < 4:
        return values[0], statistics.median(values), values[-1]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


class LocalSide:
    """A side timed in this process: a function that runs one call."""

    def __init__(self, run: Callable[[], None]):
        self.run = run

    def warm_up(self) -> float:
        return warm_up(self.run)

    def block(self, number: int, short: bool) -> float:
        if short:
            self.run()  # wakes the thread pools after the pause; not timed
        return time_block(self.run, number)


class Side(Protocol):
    """What `interleaved` needs of a side: a LocalSide, or a side in a process of its own
    (bench.worker.RemoteSide)."""

    def warm_up(self) -> float: ...

    def block(self, number: int, short: bool) -> float: ...


def interleaved(sides: dict[str, Side], *, block_seconds: float, rounds: int | None,
                quick: bool, pause_after: dict[str, float]) -> dict:
    """Time every side in alternating blocks. Returns the per-call seconds of each round, per
    side, and the plan used (one plan for all sides, set by the slowest)."""
    names = list(sides)
    estimate = {}
    for name in names:
        estimate[name] = sides[name].warm_up()
        time.sleep(pause_after.get(name, 0.0))
    slowest = max(estimate.values())
    number, n_rounds = plan(slowest, block_seconds, rounds, quick)
    short = slowest < SHORT_CALL
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for r in range(n_rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            per_round[name].append(sides[name].block(number, short))
            time.sleep(pause_after.get(name, 0.0))
    return {"number": number, "rounds": n_rounds, "seconds": per_round}


def round_ratios(numerator: list[float], denominator: list[float],
                 key: str = "ratio") -> dict[str, float]:
    """The ratio of two sides round by round (each round's blocks ran close together, so a
    slow spell of the machine hits both alike): {key: median, key_q1, key_q3: quartiles}."""
    q1, q2, q3 = quartiles([a / b for a, b in zip(numerator, denominator)])
    return {key: q2, f"{key}_q1": q1, f"{key}_q3": q3}


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))
