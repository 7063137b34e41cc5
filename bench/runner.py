"""Running the benchmark's parts and putting the results together (see bench.cli).

The headline of every case is scratch / torch with each side timed alone in a process of its
own (bench.worker), their blocks interleaved round by round; with --baseline-tree a second
scratch worker, of the older checkout, takes part in the same rounds. The in-process pair
(scratch and its torch twin in this process) stays as a secondary figure for the 1 layer x 1
direction cases: how far a figure taken in one process strays from torch alone.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from bench import env, report, targets
from bench.cases import Case, build_scratch, grid, scratch_step, torch_step
from bench.choices import CONFIGS, SCALING_T, SIZES
from bench.timing import LocalSide, interleaved, round_ratios
from bench.worker import RemoteSide, Worker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
QUICK_SIZES = SIZES[:3]
TORCH_PAUSE = 0.02  # after a block of torch: its OpenMP workers spin only briefly
SCRATCH_SIDES = ("scratch", "baseline", "floor")  # NumPy work: a pause after each block


def _pauses(settings: dict) -> dict[str, float]:
    return {**{name: settings["pause"] for name in SCRATCH_SIDES}, "torch": TORCH_PAUSE}


def measure_case(case: Case, settings: dict, workers: dict[str, Worker],
                 with_floor: bool) -> dict:
    """The headline of one case: scratch (and the baseline tree's scratch, and scratch's
    matrix-product floor) and torch, each in its worker process, interleaved. Records how
    much CPU other processes took meanwhile."""
    pids = tuple(w.pid for w in workers.values())
    if settings["wait_quiet"]:
        env.wait_until_quiet(settings["wait_quiet"], pids=pids)
    counters, start = env.cpu_counters(pids), time.perf_counter()
    fields = case.to_dict()
    sides: dict[str, RemoteSide] = {}
    # the order of a round: the two trees apart, torch between them
    for name, worker_name, call in (("scratch", "scratch", "scratch"),
                                    ("torch", "torch", "torch"),
                                    ("baseline", "baseline", "scratch"),
                                    ("floor", "scratch", "floor")):
        if worker_name in workers and (name != "floor" or with_floor):
            sides[name] = RemoteSide(workers[worker_name], call)
    for worker in workers.values():
        names = sorted({side.name for side in sides.values() if side.worker is worker})
        worker.ask("prepare", case=fields, names=names)
    try:
        timing = interleaved(sides, block_seconds=settings["block_seconds"],
                             rounds=settings["rounds"], quick=settings["quick"],
                             pause_after=_pauses(settings))
    finally:
        for worker in workers.values():
            worker.ask("release")
    seconds = timing["seconds"]
    row = {"case": fields, "label": case.label(),
           "scratch_s": statistics.median(seconds["scratch"]),
           "torch_alone_s": statistics.median(seconds["torch"]),
           **round_ratios(seconds["scratch"], seconds["torch"]),
           "scratch_rounds_s": seconds["scratch"], "torch_alone_rounds_s": seconds["torch"],
           "calls_per_block": timing["number"], "rounds": timing["rounds"],
           "others_cores": env.others_cores(counters, env.cpu_counters(pids),
                                            time.perf_counter() - start)}
    if "floor" in seconds:
        row["floor_s"] = statistics.median(seconds["floor"])
        row["floor_rounds_s"] = seconds["floor"]
    if "baseline" in seconds:
        row["baseline_s"] = statistics.median(seconds["baseline"])
        row["baseline_rounds_s"] = seconds["baseline"]
        row.update(round_ratios(seconds["baseline"], seconds["torch"], "baseline_ratio"))
        row.update(round_ratios(seconds["scratch"], seconds["baseline"], "new_over_old"))
    return row


def measure_inprocess(case: Case, settings: dict) -> dict:
    """The secondary figure: scratch and its torch twin (same weights) in this process,
    interleaved. It reads torch slower than torch alone when OpenBLAS's threads spin next
    to it (see bench.timing)."""
    module = build_scratch(case)
    sides = {"scratch": LocalSide(scratch_step(case, module)),
             "torch": LocalSide(torch_step(case, module))}
    timing = interleaved(sides, block_seconds=settings["block_seconds"],
                         rounds=settings["rounds"], quick=settings["quick"],
                         pause_after=_pauses(settings))
    seconds = timing["seconds"]
    ratios = round_ratios(seconds["scratch"], seconds["torch"], "ratio_in")
    return {"scratch_in_s": statistics.median(seconds["scratch"]),
            "torch_in_s": statistics.median(seconds["torch"]), **ratios,
            "scratch_in_rounds_s": seconds["scratch"], "torch_in_rounds_s": seconds["torch"]}


def progress(row: dict) -> None:
    extra = ""
    if row.get("floor_s") is not None:
        extra += f", floor {report.ms(row['floor_s'])} ms"
    if row.get("baseline_s") is not None:
        extra = (f", baseline {report.ms(row['baseline_s'])} ms, new/old "
                 f"{row['new_over_old']:.2f}") + extra
    if row.get("others_cores") is not None:
        extra += f", others {row['others_cores']:.2f} cores"
    print(f"  {row['label']:42s} scratch {report.ms(row['scratch_s']):>8s} ms  torch alone "
          f"{report.ms(row['torch_alone_s']):>8s} ms  ratio {row['ratio']:.2f} "
          f"[{row['ratio_q1']:.2f}-{row['ratio_q3']:.2f}]{extra}", flush=True)


def peak_memory(case: Case, side: str, threads: int, tree: Path | None = None) -> dict | None:
    command = [sys.executable, "-m", "bench.memory", side, str(threads),
               json.dumps(case.to_dict())]
    if tree is not None:
        command.append(str(tree))
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        print(f"  memory ({side}, {case.label()}): the subprocess failed:\n"
              f"{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout)


def parity_throughput(tree: Path) -> dict:
    """Run the parity harness's ci profile on the CPU, as `make parity` does (one thread per
    library), from the checkout `tree`, and read its case counts and times from its report."""
    if not (tree / "parity" / "__main__.py").exists():
        return {"skipped": "the parity package has no command line yet"}
    run_env = dict(os.environ)
    run_env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "parity", "--profile", "ci", "--device", "cpu"],
                          capture_output=True, text=True, cwd=tree, env=run_env, check=False)
    wall = time.perf_counter() - start
    groups = re.findall(r"(\d+) pinned \+ (\d+) explored cases in ([\d.]+) s", done.stdout)
    # "(N cases compared, T s)", or "(N layer cases and M function cases compared, T s)"
    total = re.search(r"\((\d+)(?: layer cases and (\d+) function)? cases compared, ([\d.]+) s\)",
                      done.stdout)
    if not groups or total is None:
        return {"skipped": f"could not read the harness's report (exit {done.returncode})",
                "tail": done.stdout[-1500:] + done.stderr[-1500:]}
    cases = sum(int(p) + int(e) for p, e, _ in groups)
    seconds = sum(float(s) for _, _, s in groups)
    return {"exit_status": done.returncode, "cases": cases, "seconds": seconds,
            "cases_per_second": cases / seconds,
            "report_cases": int(total.group(1)) + int(total.group(2) or 0),
            "report_seconds": float(total.group(3)), "wall_seconds": wall}


def _quick_subset(args) -> tuple[list[str], list[str]]:
    """--quick measures time against T and memory for one kind and dtype: the LSTM in
    float64 (the exact oracle) when they were asked for."""
    kind = "lstm" if "lstm" in args.kinds else args.kinds[0]
    dtype = "float64" if "float64" in args.dtypes else args.dtypes[0]
    return [kind], [dtype]


def _start_workers(args, tree: Path) -> dict[str, Worker]:
    """The processes that time: scratch of `tree`, the baseline tree's scratch when asked
    for, torch. Each is asked for its libraries at once, so that a bad tree stops the run
    before any timing."""
    workers: dict[str, Worker] = {}
    try:
        workers["scratch"] = Worker("scratch", args.threads, tree)
        if args.baseline_tree is not None:
            workers["baseline"] = Worker("scratch", args.threads, args.baseline_tree.resolve())
        workers["torch"] = Worker("torch", args.threads)
        for worker in workers.values():
            worker.info = worker.ask("info")
    except BaseException:
        for worker in workers.values():
            worker.close()
        raise
    return workers


def _describe(args, tree: Path, workers: dict[str, Worker]) -> dict:
    info = env.machine(args.threads)
    scratch_info = dict(workers["scratch"].info)
    info.update({k: v for k, v in scratch_info.items() if k not in ("side", "scratch_file")})
    info.update({k: v for k, v in workers["torch"].info.items()
                 if k != "side"})
    info["trees"] = {"scratch": {**env.tree_info(tree),
                                 "scratch_file": scratch_info["scratch_file"]}}
    if "baseline" in workers:
        baseline = workers["baseline"].info
        info["trees"]["baseline"] = {**env.tree_info(args.baseline_tree),
                                     "scratch_file": baseline["scratch_file"],
                                     "openblas_runtime": baseline["openblas_runtime"]}
    return info


def run(args) -> int:
    # torch says so once per process; the table says which path torch takes anyway
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    quick = args.quick
    settings = {
        "quick": quick, "threads": args.threads, "rounds": args.rounds,
        "block_seconds": args.block_ms / 1e3,
        "pause": args.pause if args.pause is not None else (0.15 if args.threads > 1 else 0.0),
        "wait_quiet": args.wait_quiet, "headline": report.HEADLINE,
    }
    sizes = args.sizes or (QUICK_SIZES if quick else SIZES)
    configs = args.configs or ([(1, 1)] if quick else list(CONFIGS))
    tree = (args.tree or ROOT).resolve()
    started = time.time()
    workers = _start_workers(args, tree)
    try:
        info = _describe(args, tree, workers)
        results: dict = {"environment": info, "settings": settings,
                         "started": time.ctime(started),
                         "load_average_start": env.load_average()}
        _measure(args, settings, sizes, configs, tree, workers, results)
    finally:
        for worker in workers.values():
            worker.close()
    results["load_average_end"] = env.load_average()
    results["seconds"] = time.time() - started
    verdicts = targets.check(results)
    results["targets"] = [v.__dict__ for v in verdicts]
    _print_tables(results, verdicts)

    path = args.json or RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json")
    report.write_json(results, path)
    print(f"\n{len(results['pairs'])} cases in {results['seconds'] / 60:.1f} min; load average "
          f"at the end {results['load_average_end']}. Results: {path}")
    return 0


def _measure(args, settings: dict, sizes, configs, tree: Path, workers: dict[str, Worker],
             results: dict) -> None:
    quick = args.quick
    print("scratch vs torch.nn on the CPU: forward + backward, seconds per call are medians "
          "over interleaved rounds")
    for line in env.header_lines(results["environment"]):
        print("  " + line)
    print(f"  timing: blocks of at least {args.block_ms:.0f} ms, {settings['pause']:.2f} s pause "
          f"after each block of NumPy work; load average at start "
          f"{results['load_average_start']} (other work on the machine makes every figure "
          "noisier)\n")

    print(f"== {report.HEADLINE} ==", flush=True)
    rows = []
    for case in grid(args.kinds, args.dtypes, sizes, configs):
        rows.append(measure_case(case, settings, workers, with_floor=not args.no_floor))
        progress(rows[-1])
    results["pairs"] = rows

    if not args.no_inprocess:
        print("\n== secondary: scratch and its torch twin in this one process, 1 layer x 1 "
              "direction ==", flush=True)
        import torch

        torch.set_num_threads(args.threads)
        for row in rows:
            if (row["case"]["layers"], row["case"]["directions"]) != (1, 1):
                continue
            row.update(measure_inprocess(Case(**row["case"]), settings))
            print(f"  {row['label']:42s} scratch {report.ms(row['scratch_in_s']):>8s} ms  "
                  f"torch in process {report.ms(row['torch_in_s']):>8s} ms  ratio "
                  f"{row['ratio_in']:.2f}; torch in process / alone "
                  f"{row['torch_in_s'] / row['torch_alone_s']:.2f}", flush=True)

    if not args.no_scaling:
        print("\n== time against T ==", flush=True)
        B, I, H = args.scaling_size or ((16, 64, 128) if quick else (32, 128, 256))
        kinds, dtypes = _quick_subset(args) if quick else (args.kinds, args.dtypes)
        series = []
        for kind in kinds:
            for dtype in dtypes:
                label = f"{kind} {dtype} B={B} I={I} H={H} 1x1"
                points = []
                for T in SCALING_T:
                    row = measure_case(Case(kind, dtype, T, B, I, H), settings, workers, False)
                    progress(row)
                    points.append({key: row[key] for key in ("scratch_s", "torch_alone_s",
                                                             "ratio", "baseline_s")
                                   if key in row} | {"T": T})
                series.append({"label": label, "points": points})
        results["scaling"] = series

    if not args.no_memory:
        print("\n== peak memory (each side in a fresh process) ==", flush=True)
        kinds, dtypes = _quick_subset(args) if quick else (args.kinds, args.dtypes)
        memory = []
        for kind in kinds:
            for dtype in dtypes:
                case = Case(kind, dtype, *args.memory_size)
                mine = peak_memory(case, "scratch", args.threads, tree)
                theirs = peak_memory(case, "torch", args.threads)
                if mine is None:
                    continue
                entry = {"label": case.label(), "case": case.to_dict(),
                         "scratch_mib": mine["peak_mib"], "method": mine["method"],
                         "torch_mib": None if theirs is None else theirs["peak_mib"]}
                if args.baseline_tree is not None:
                    old = peak_memory(case, "scratch", args.threads, args.baseline_tree)
                    entry["baseline_mib"] = None if old is None else old["peak_mib"]
                memory.append(entry)
                theirs_text = "-" if theirs is None else f"{theirs['peak_mib']:.0f}"
                print(f"  {entry['label']:42s} scratch {entry['scratch_mib']:.0f} MiB  torch "
                      f"{theirs_text} MiB", flush=True)
        results["memory"] = memory

    if not args.no_parity and (not quick or args.parity):
        print("\n== parity harness, ci profile, CPU ==", flush=True)
        results["parity"] = parity_throughput(tree)
    else:
        results["parity"] = {"skipped": "--quick or --no-parity"}


def _print_tables(results: dict, verdicts) -> None:
    rows = results["pairs"]
    print(f"\n\n== {report.HEADLINE} (ratio: median of the per-round ratios; floor: "
          "scratch's matrix products alone; in process: torch timed in one process with "
          "scratch, secondary; others: cores other processes took meanwhile) ==")
    print(report.pairs_table(rows))
    if any("baseline_s" in r for r in rows):
        trees = results["environment"]["trees"]
        print(f"\n== side by side: new = {env.tree_text(trees['scratch'])}, old = "
              f"{env.tree_text(trees['baseline'])}; each tree's scratch and torch alone "
              "in processes of their own, in the same rounds ==")
        print(report.side_by_side_table(rows))
        print(report.side_by_side_summary(rows))
    if results.get("scaling"):
        print("\n== time against T ==")
        print(report.scaling_table(results["scaling"]))
    if results.get("memory"):
        print(f"\n== peak memory, growth of resident memory during one call "
              f"({results['memory'][0]['method']}) ==")
        print(report.memory_table(results["memory"]))
    parity = results["parity"]
    print("\n== parity harness ==")
    if "skipped" in parity:
        print(f"  skipped: {parity['skipped']}")
    else:
        print(f"  ci profile on the CPU (one thread per library, as make parity): "
              f"{parity['cases']} cases in {parity['seconds']:.1f} s = "
              f"{parity['cases_per_second']:.0f} cases per second "
              f"(whole run {parity['wall_seconds']:.1f} s with start-up and training "
              f"parity; exit status {parity['exit_status']})")
    print("\n== targets ==")
    print(report.verdicts_text(verdicts))
