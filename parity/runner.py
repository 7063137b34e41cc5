"""Running the harness: pinned cases, then Hypothesis, per mode and device; with statistics.

For each mode and device the fixed scenarios of parity.pinned run first; if they pass,
Hypothesis explores ``profile.examples`` drawn cases (parity.strategies), stopping at the
first failure, which it shrinks to the simplest failing configuration before it is reported.
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from parity.case import Case
from parity.compare import CaseResult, ParityFailure, run_case
from parity.pinned import pinned_cases
from parity.strategies import Profile, draw_case

OPTION_COLUMNS = ("float64", "float32", "layers>1", "bidir", "batch_first", "no bias",
                  "unbatched", "lengths", "hx", "proj", "eval", "p=0", "p=1", "masks", "cuda")
DROPOUT_COLUMN = {"eval": "eval", "train_p0": "p=0", "train_p1": "p=1", "train_masks": "masks"}


def case_options(case: Case) -> list[str]:
    """The option columns a case counts in."""
    flags = {
        case.dtype: True,
        "layers>1": case.num_layers > 1,
        "bidir": case.bidirectional,
        "batch_first": case.batch_first and not case.unbatched,
        "no bias": not case.bias,
        "unbatched": case.unbatched,
        "lengths": case.lengths is not None,
        "hx": case.hx,
        "proj": case.proj_size > 0,
        DROPOUT_COLUMN[case.dropout_mode]: True,
        "cuda": case.device == "cuda",
    }
    return [name for name, on in flags.items() if on]


@dataclass
class MaxError:
    error: float = 0.0  # max |impl - torch| / max(1, max|torch|)
    tol: float = 0.0  # the tolerance of the case where it was seen
    ratio: float = 0.0  # the largest error / tolerance over all cases


@dataclass
class Stats:
    """Cases compared per mode (or, with ``key="group"``, per function group) and per option
    (``columns`` of a case), the largest errors per quantity and dtype, and the cases where
    torch overflowed."""

    cases: Counter = field(default_factory=Counter)  # mode -> cases compared
    options: Counter = field(default_factory=Counter)  # (mode, option) -> cases
    errors: dict = field(default_factory=dict)  # (quantity, dtype) -> MaxError
    non_finite: Counter = field(default_factory=Counter)  # mode -> cases torch overflowed
    key: str = "mode"
    columns: Callable = case_options

    def record(self, result: CaseResult) -> None:
        case = result.case
        name = getattr(case, self.key)
        if result.non_finite_reference:
            self.non_finite[name] += 1
            return
        self.cases[name] += 1
        for option in self.columns(case):
            self.options[name, option] += 1
        for check in result.checks:
            if check.problem is not None:
                continue
            entry = self.errors.setdefault((check.quantity, case.dtype), MaxError())
            if check.error >= entry.error:
                entry.error, entry.tol = check.error, check.tol
            entry.ratio = max(entry.ratio, check.error / check.tol)

    def max_error(self, dtype: str) -> MaxError:
        entries = [e for (quantity, dt), e in self.errors.items() if dt == dtype]
        return max(entries, key=lambda e: e.error, default=MaxError())


@dataclass
class Run:
    """One mode on one device, or one function group: how many pinned and explored cases
    ran and how long, the first failure and what found it."""

    name: str  # the mode, or the group
    device: str = "cpu"
    stats: Stats = field(default_factory=Stats)  # the modes share one, a group has its own
    pinned: int = 0
    explored: int = 0
    seconds: float = 0.0
    failure: CaseResult | None = None
    found_by: str = ""  # "pinned case '...'" or "Hypothesis (shrunk)"


def search(outcome: Run, pinned, run, draw, record, skip, profile: Profile, examples: int,
           seed: int | None) -> Run:
    """The pinned cases (label, case) in order, then ``examples`` of Hypothesis's cases
    ``draw(data)``, each ``run`` and ``record``ed, until the first failure (kept in ``outcome``
    with what found it); a drawn result that ``skip`` says is no verdict is rejected.
    Hypothesis's seed is fixed for a derandomized profile (the same cases every run, but
    different ones for each mode or group and device), from ``seed`` when given, else none
    (a fresh exploration). Returns ``outcome``."""
    start = time.perf_counter()
    for label, case in pinned:
        result = run(case)
        outcome.pinned += 1
        if not result.passed:
            outcome.failure, outcome.found_by = result, label
            outcome.seconds = time.perf_counter() - start
            return outcome
        record(result)
    explored = Counter()
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if profile.shrink else [])

    @settings(max_examples=examples, derandomize=False,  # repeatable by the seed below instead
              database=None, deadline=None, phases=phases, print_blob=False,
              report_multiple_bugs=False, suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.normal)
    @given(data=st.data())
    def explore(data) -> None:
        result = run(draw(data))
        explored["n"] += 1
        if skip(result):
            reject()
        if not result.passed:
            raise ParityFailure(result)
        record(result)

    if seed is not None or profile.derandomize:
        key = f"{profile.name}/{outcome.name}/{outcome.device}/{seed}"
        explore = hypothesis_seed(zlib.crc32(key.encode()))(explore)
    try:
        explore()
    except ParityFailure as failure:
        outcome.failure = failure.result
        notes = getattr(failure, "__notes__", [])  # "Falsifying example", "Draw 1 (...): ..."
        outcome.failure.story = [line for note in notes for line in str(note).splitlines()
                                 if line.strip()]
        outcome.found_by = "Hypothesis" + (" (shrunk to the simplest failing case it found)"
                                           if profile.shrink else "")
    outcome.explored = explored["n"]
    outcome.seconds = time.perf_counter() - start
    return outcome


def run_mode(mode: str, device: str, profile: Profile, impl: ModuleType, impl_name: str,
             stats: Stats, seed: int | None = None, pinned: bool = True) -> Run:
    """Pinned cases (unless pinned=False), then Hypothesis, for one mode on one device."""

    def skip(result: CaseResult) -> bool:  # torch overflowed: counted, but no verdict
        if result.non_finite_reference:
            stats.record(result)
        return result.non_finite_reference

    cases = [(f"pinned case '{name}'", case) for name, case in pinned_cases(mode, device)]
    return search(Run(mode, device, stats), cases if pinned else [],
                  lambda case: run_case(case, impl, impl_name),
                  lambda data: draw_case(data, mode, profile, device), stats.record, skip,
                  profile, profile.examples, seed)

