"""The rubric: which items count, how much, who sees them, and the limits grading runs under.

The default gives every item of ``items.ITEMS`` its weight (100 points in all), visible to
students. An instructor changes it with a TOML (Python 3.11+) or JSON file; anything the file
does not mention keeps its default:

    max_examples = 25          # cases per item (Hypothesis, seeded) before it passes
    seed = 1234567             # the course's secret: which cases everyone meets (see below)

    [limits]                   # per child process (see session.Limits), but one
    case_seconds = 10
    item_seconds = 60
    memory_mb = 1024
    submission_seconds = 60    # the whole submission, every item together

    [items.bptt]
    weight = 20                # points; 0 leaves the item out
    visibility = "hidden"      # visible | hidden | after_due_date | after_published

``seed`` picks the cases: every submission graded with one seed meets the same cases, so
grades are fair within a course, and a table of answers to one seed's cases (passed between
students, or built from another year's feedback) is useless under another. Keep it secret.
Where the rubric sets none, every run draws a fresh secret one (``fresh_seed``):
``gradescope-bundle`` once for the bundle, ``grade`` and ``grade-all`` once per run, and the
instructor's report records it, so that ``--seed N`` (or ``seed = N``) meets the same cases.

``submission_seconds`` bounds the time of the whole submission: once it is spent, the items
not yet graded fail with that reason. By default it is 60 s for 25 cases an item, in
proportion above (``DEFAULT_SUBMISSION_SECONDS``): the reference takes about 5 s for all.

``visibility`` is Gradescope's: a hidden item is graded and counts, and students do not see it.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from parity.grading.items import ITEMS, ITEMS_BY_ID
from parity.grading.session import Limits

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
SEEDS = 2**32  # a seed is an int in 0..SEEDS-1
# the whole submission's time, for 25 cases an item: the reference grades in about 5 s on a
# 2-core machine, a submission that fails each case just inside its limits held it for 364 s
DEFAULT_SUBMISSION_SECONDS = 60.0
SUBMISSION_LIMIT = "submission_seconds"  # a key of [limits], kept on the Rubric


def fresh_seed() -> int:
    """A secret course seed, drawn from the operating system's randomness (never 0)."""
    return secrets.randbelow(SEEDS - 1) + 1


def seed_problem(seed) -> str | None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEEDS:
        return f"seed must be an int in 0..2**32-1, got {seed!r}"
    return None


@dataclass(frozen=True)
class Entry:
    id: str
    weight: float
    visibility: str = "visible"


@dataclass(frozen=True)
class Rubric:
    entries: tuple[Entry, ...]
    max_examples: int = 25
    limits: Limits = field(default_factory=Limits)
    seed: int | None = None  # mixed into every item's Hypothesis seed; None: draw per run
    submission_seconds: float | None = None  # None: DEFAULT_SUBMISSION_SECONDS, scaled

    @property
    def submission_budget(self) -> float:
        """Seconds the whole submission may take, every item together."""
        if self.submission_seconds is not None:
            return float(self.submission_seconds)
        return DEFAULT_SUBMISSION_SECONDS * max(1.0, self.max_examples / 25)

    def seeded(self, seed: int | None = None) -> tuple[Rubric, bool]:
        """(this rubric with ``seed``, or its own seed, or a fresh secret one where it has
        none; whether that seed was drawn now)."""
        if seed is None and self.seed is not None:
            return self, False
        drawn = seed is None
        seed = fresh_seed() if seed is None else seed
        problem = seed_problem(seed)
        if problem:
            raise ValueError(problem)
        return replace(self, seed=seed), drawn

    @property
    def graded(self) -> tuple[Entry, ...]:
        """The entries that count (weight > 0), in the catalogue's order."""
        return tuple(e for e in self.entries if e.weight > 0)

    @property
    def max_score(self) -> float:
        return float(sum(e.weight for e in self.graded))

    def to_dict(self) -> dict:
        return {
            "max_examples": self.max_examples,
            "seed": self.seed,
            "limits": {**{f.name: getattr(self.limits, f.name) for f in fields(Limits)},
                       SUBMISSION_LIMIT: self.submission_seconds},
            "items": {e.id: {"weight": e.weight, "visibility": e.visibility}
                      for e in self.entries},
        }


def default_rubric() -> Rubric:
    return Rubric(tuple(Entry(item.spec.id, float(item.spec.weight)) for item in ITEMS))


def load_rubric(path: str | Path) -> Rubric:
    """The default rubric with the changes a TOML or JSON file makes. Every problem in the
    file is reported at once, before any grading."""
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise ValueError(f"rubric file must end in .toml or .json, got {str(path)!r}")
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read rubric file {str(path)!r}: {error}") from None
    loads, invalid = json.loads, json.JSONDecodeError
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ValueError(f"rubric {path}: TOML needs Python 3.11 or newer; write it as "
                             "JSON (same keys) instead") from None
        loads, invalid = tomllib.loads, tomllib.TOMLDecodeError
    try:
        data = loads(text)
    except invalid as error:
        raise ValueError(f"rubric {path} is not valid {path.suffix[1:].upper()}: "
                         f"{error}") from None
    return rubric_from_dict(data, str(path))


def rubric_from_dict(data, source: str = "rubric") -> Rubric:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a table of settings, got {type(data).__name__}")
    problems: list[str] = []
    unknown = sorted(set(data) - {"max_examples", "seed", "limits", "items"})
    if unknown:
        problems.append(f"unknown keys {unknown} (known: max_examples, seed, limits, items)")
    seed = data.get("seed")  # absent (or JSON's null): a fresh one per run
    if seed is not None and seed_problem(seed):
        problems.append(str(seed_problem(seed)))
        seed = None
    rubric = default_rubric()

    max_examples = data.get("max_examples", rubric.max_examples)
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or \
            not 1 <= max_examples <= 10_000:
        problems.append(f"max_examples must be an int in 1..10000, got {max_examples!r}")
        max_examples = rubric.max_examples

    limits = rubric.limits
    submission_seconds = None
    limit_data = data.get("limits", {})
    known_limits = [*(f.name for f in fields(Limits)), SUBMISSION_LIMIT]
    if not isinstance(limit_data, dict):
        problems.append(f"limits must be a table, got {type(limit_data).__name__}")
    else:
        limit_data = dict(limit_data)
        submission_seconds = limit_data.pop(SUBMISSION_LIMIT, None)
        if submission_seconds is not None and (
                isinstance(submission_seconds, bool)
                or not isinstance(submission_seconds, (int, float))
                or not math.isfinite(submission_seconds) or submission_seconds <= 0):
            problems.append(f"limits.{SUBMISSION_LIMIT} must be a positive number, got "
                            f"{submission_seconds!r}")
            submission_seconds = None
        bad = sorted(set(limit_data) - set(known_limits))
        if bad:
            problems.append(f"unknown limits {bad} (known: {', '.join(known_limits)})")
        try:
            limits = replace(limits, **{k: v for k, v in limit_data.items()
                                        if k in known_limits})
        except ValueError as error:
            problems.append(str(error))

    entries = {e.id: e for e in rubric.entries}
    item_data = data.get("items", {})
    if not isinstance(item_data, dict):
        problems.append(f"items must be a table, got {type(item_data).__name__}")
        item_data = {}
    for item_id, settings in item_data.items():
        if item_id not in ITEMS_BY_ID:
            problems.append(f"unknown item {item_id!r} (items: {', '.join(ITEMS_BY_ID)})")
            continue
        if not isinstance(settings, dict):
            problems.append(f"items.{item_id} must be a table, got {settings!r}")
            continue
        bad = sorted(set(settings) - {"weight", "visibility"})
        if bad:
            problems.append(f"items.{item_id}: unknown keys {bad} (known: weight, visibility)")
        entry = entries[item_id]
        weight = settings.get("weight", entry.weight)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
                not math.isfinite(weight) or weight < 0:
            problems.append(f"items.{item_id}.weight must be a number >= 0, got {weight!r}")
            weight = entry.weight
        visibility = settings.get("visibility", entry.visibility)
        if visibility not in VISIBILITIES:
            problems.append(f"items.{item_id}.visibility must be one of "
                            f"{', '.join(VISIBILITIES)}, got {visibility!r}")
            visibility = entry.visibility
        entries[item_id] = Entry(item_id, float(weight), visibility)
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))
    result = Rubric(tuple(entries[item.spec.id] for item in ITEMS), max_examples, limits, seed,
                    None if submission_seconds is None else float(submission_seconds))
    if not result.graded:
        raise ValueError(f"{source}: every item has weight 0: nothing would be graded")
    return result
