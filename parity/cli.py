"""``python -m parity``: the command line of the parity harness.

    python -m parity [--profile quick|ci|thorough] [--device cpu|cuda|all]
                     [--modes rnn_tanh,rnn_relu,lstm,gru] [--impl MODULE_OR_DIR] [--seed N]
    python -m parity [--impl MODULE_OR_DIR] --reproduce '<case JSON from a failure report>'
    python -m parity zoo OUT_DIR [--names a,b] [--list]

Exit status 0 when everything agrees with torch, 1 when anything differs (or a part that was
asked for could not run), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

from parity.case import Case
from parity.spec import ALL_MODES

MODE_NAMES = {"rnn_tanh": ["RNN_TANH"], "rnn_relu": ["RNN_RELU"], "rnn": ["RNN_TANH", "RNN_RELU"],
              "lstm": ["LSTM"], "gru": ["GRU"]}


def _choose(text: str, order: list[str], named, error: str) -> list[str]:
    """The names of ``order`` that comma-separated words choose (``named(word)``: those a
    word names), in that order; ``none`` for none. A word that names nothing is an error."""
    if text.strip().lower() == "none":
        return []
    chosen: set[str] = set()
    for word in text.split(","):
        found = named(word.strip())
        if not found:
            raise argparse.ArgumentTypeError(error.format(word=word))
        chosen.update(found)
    return [n for n in order if n in chosen]


def parse_modes(text: str) -> list[str]:
    return _choose(text, list(ALL_MODES), lambda word: MODE_NAMES.get(word.lower()),
                   f"unknown mode {{word!r}}: choose from {', '.join(MODE_NAMES)} "
                   "(comma-separated), or none")


def parse_groups(text: str) -> list[str]:
    """Group names or shell patterns (``*_cell_*``), comma-separated; ``none`` for none;
    ``training`` is the training-parity table."""
    from fnmatch import filter as matching

    from parity.units import GROUPS

    names = [g.name for g in GROUPS] + ["training"]
    return _choose(text, names, lambda pattern: matching(names, pattern),
                   f"no group matches {{word!r}}: choose from {', '.join(names)} "
                   "(comma-separated, shell patterns allowed), or none")


def main_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m parity",
        description="Prove that an implementation with scratch's API computes what torch.nn "
                    "computes: outputs, final states and every gradient. "
                    "(`python -m parity zoo --help` for the wrong implementations.)",
    )
    p.add_argument("--profile", choices=["quick", "ci", "thorough"], default="ci",
                   help="how many and how large the cases are (default: ci, the same cases "
                        "every run; thorough explores anew each run)")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                   help="where torch runs (default: all = the CPU, and CUDA when available)")
    p.add_argument("--modes", type=parse_modes, default=list(ALL_MODES),
                   help="comma-separated: rnn_tanh, rnn_relu, rnn (both), lstm, gru "
                        "(default: all)")
    p.add_argument("--kinds", type=parse_modes, dest="modes", help=argparse.SUPPRESS)  # old name
    p.add_argument("--groups", type=parse_groups, default=None,
                   help="the other public functions' groups to run, comma-separated names or "
                        "patterns (RNNCell, gru_cell_*, *Loss, SGD, training, ...), or none "
                        "(default: all)")
    p.add_argument("--impl", default=None, metavar="MODULE_OR_DIR",
                   help="the implementation under test: an importable module name, or a "
                        "directory holding a scratch/ package (default: scratch)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed Hypothesis with this number instead of the profile's fixed or "
                        "random seed")
    p.add_argument("--reproduce", default=None, metavar="CASE_JSON",
                   help="run the one case given as JSON by a failure report, and report it")
    return p


def zoo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m parity zoo",
        description="Write the zoo of wrong implementations: OUT_DIR/<name>/scratch/, each a "
                    "copy of scratch/ with one realistic bug, for `python -m parity --impl "
                    "OUT_DIR/<name>`.",
    )
    p.add_argument("out_dir", nargs="?", type=Path)
    p.add_argument("--names", default=None, help="comma-separated members (default: all)")
    p.add_argument("--list", action="store_true", help="list the members and what they break")
    return p


def main(argv: list[str] | None = None) -> int:
    """The parity harness (``python -m parity`` routes every other command elsewhere)."""
    argv = sys.argv[1:] if argv is None else argv
    args = main_parser().parse_args(argv)

    from parity import reference
    from parity.impl import ImplError, load_impl

    try:
        impl = load_impl(args.impl)
    except ImplError as error:
        return usage_error(str(error))
    name = args.impl or "scratch"

    cuda = reference.cuda_available()
    if cuda:
        reference.configure_cuda()
    if args.reproduce is not None:
        return reproduce(args.reproduce, impl, name, cuda)
    if args.device == "cuda" and not cuda:
        return usage_error("--device cuda, but torch sees no CUDA device (torch "
                           f"{reference.torch.__version__} reports torch.cuda.is_available() = "
                           "False); run on the CPU with --device cpu")
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu", "cuda"] if cuda else ["cpu"]}
    return run_all(args, impl, name, devices[args.device], cuda)


def reproduce(text: str, impl, name: str, cuda: bool) -> int:
    """Run the one case of a failure report (a layer case, or a group's with a "group" key)
    and print its verdict: PASS with its largest error, or FAIL with the report."""
    from parity import units
    from parity.compare import run_case

    try:
        case = units.UnitCase.from_json(text) if '"group"' in text else Case.from_json(text)
    except (ValueError, TypeError, KeyError) as error:
        return usage_error(f"--reproduce: {error}")
    if isinstance(case, units.UnitCase):
        why = units.missing(impl, units.GROUPS_BY_NAME[case.group])
        if why is not None:
            return usage_error(f"--reproduce: group {case.group} cannot run: {why}")
        result = units.run_unit_case(case, impl, name)
    elif case.device == "cuda" and not cuda:
        return usage_error("this case runs torch on CUDA, which this machine does not have")
    else:
        result = run_case(case, impl, name)
    if result.non_finite_reference:
        print(f"torch's result is not finite for this case: no verdict\ncase: {case.describe()}")
        return 1
    if result.passed:
        worst = max(result.checks, key=lambda c: c.error / c.tol)
        print(f"PASS: every tensor agrees with torch ({len(result.checks)} compared; largest "
              f"error {worst.error:.2e} in {worst.name}, tolerance {worst.tol:.1e})\n"
              f"case: {case.describe()}")
        return 0
    print("FAIL\n" + result.report(limit=100))
    return 1


def _progress(run, row: str, what: str):
    """One line of the run's progress, and the report of its failure; returns the run."""
    status = "ok" if run.failure is None else "FAIL"
    print(f"  {row} {status:4s} {run.pinned} pinned + {run.explored} explored cases "
          f"in {run.seconds:.1f} s", flush=True)
    if run.failure is not None:
        print(f"\nFAIL: {what}, found by {run.found_by}\n"
              + textwrap.indent(run.failure.report(), "    ") + "\n", flush=True)
    return run


def run_all(args, impl, name: str, devices: list[str], cuda: bool) -> int:
    from parity import summary, units
    from parity.runner import Stats, run_mode
    from parity.strategies import PROFILES

    profile = PROFILES[args.profile]
    stats = Stats()
    start = time.perf_counter()
    print(f"parity: {name} against torch, profile {profile.name} "
          f"({profile.examples} Hypothesis examples per mode and device, after the pinned "
          f"cases), devices {', '.join(devices)}")
    runs = []
    for device in devices:
        for mode in args.modes:
            runs.append(_progress(run_mode(mode, device, profile, impl, name, stats, args.seed),
                                  f"{mode:8s} {device:4s}", f"{mode} on {device}"))

    groups = [g for g in units.GROUPS if args.groups is None or g.name in args.groups]
    why_not = {g.name: units.missing(impl, g) for g in groups}
    skipped = [f"group {g}: {why}" for g, why in why_not.items() if why is not None]
    groups = [g for g in groups if why_not[g.name] is None]
    if groups:
        print(f"  other public functions ({profile.group_examples} "
              "Hypothesis examples per group, after the pinned cases; cpu):")
    unit_runs = []
    for group in groups:
        unit_runs.append(_progress(units.run_unit_group(group, profile, impl, name, args.seed),
                                   f"{group.name:20s}", f"group {group.name}"))

    if "cuda" not in devices:
        skipped.append("cuda: " + ("torch sees no CUDA device" if not cuda
                                   else "not asked for (--device cpu)"))
    training_rows: list[dict] = []
    if args.groups is None or "training" in args.groups:
        training_rows, training_note = run_training(args.profile, name)
        if training_note:
            skipped.append(training_note)

    for shown, title, text in (
            (runs, "cases compared, per mode and option", summary.cases_table(stats, args.modes)),
            (runs, "largest error seen, per tensor (error = max|impl - torch| / max(1, "
                   "max|torch|))", summary.errors_table(stats)),
            (runs, "per mode and device", summary.modes_table(runs)),
            (unit_runs, "other public functions: cases per group and option, largest error",
             summary.units_table(unit_runs)),
            (training_rows, "training parity (parity.training)",
             summary.training_table(training_rows))):
        if shown:
            print(f"\n== {title} ==\n{text}")
    non_finite = sum(stats.non_finite.values())
    if non_finite:
        skipped.append(f"{non_finite} drawn cases where torch's result overflowed (no verdict)")
    if skipped:
        print("\nskipped:\n" + "\n".join(f"  - {line}" for line in skipped))
    failed = {"mode/device runs": [f"{r.name} on {r.device}" for r in runs if r.failure],
              "function groups": [r.name for r in unit_runs if r.failure],
              "training rows": [str(r.get("name")) for r in training_rows
                                if not r.get("passed")]}
    parts = [f"{len(names)} {what} ({', '.join(names)})" for what, names in failed.items()
             if names]
    unit_cases = sum(r.stats.cases[r.name] for r in unit_runs)
    verdict = f"FAIL: {', '.join(parts)} differ from torch" if parts else "PASS"
    print(f"\n{verdict} "
          f"({sum(stats.cases.values())} layer cases and {unit_cases} function cases compared, "
          f"{time.perf_counter() - start:.1f} s)")
    return 1 if parts else 0


def run_training(profile: str, impl_name: str) -> tuple[list[dict], str]:
    """parity.training's rows, or a note saying why it did not run."""
    if impl_name != "scratch":
        return [], "training parity: it runs against the project's scratch only, not --impl"
    from parity.training import run_training_parity

    try:
        rows = list(run_training_parity(profile))
    except Exception as error:  # reported as a failing row: the summary still prints
        rows = [{"name": f"run_training_parity({profile!r}) raised "
                         f"{type(error).__name__}: {error}",
                 "steps": 0, "max_param_diff": float("nan"), "max_loss_diff": float("nan"),
                 "tolerance": float("nan"), "passed": False}]
    return rows, ""


def zoo_main(argv: list[str]) -> int:
    from parity import zoo

    args = zoo_parser().parse_args(argv)
    if args.list:
        for mutant in zoo.MUTANTS:
            print(f"{mutant.name}\n    {mutant.description}\n    breaks: {mutant.breaks}")
        return 0
    if args.out_dir is None:
        return usage_error("give OUT_DIR (or --list)")
    names = [m.name for m in zoo.MUTANTS] if args.names is None else args.names.split(",")
    unknown = [n for n in names if n not in zoo.BY_NAME]
    if unknown:
        return usage_error(f"no zoo member named {unknown}; see --list")
    for mutant_name in names:
        path = zoo.materialize(mutant_name, args.out_dir)
        print(f"{path}  ({zoo.BY_NAME[mutant_name].breaks})")
    return 0


def usage_error(message: str) -> int:
    """Say what is wrong on stderr; the exit status of a usage error."""
    print(f"error: {message}", file=sys.stderr)
    return 2
