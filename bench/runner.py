"""Running the benchmark's parts and putting the results together (see bench.cli)."""

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

import torch

from bench import env, report, targets
from bench.cases import Case, build_scratch, floor_step, grid, scratch_step, torch_step
from bench.choices import CONFIGS, SCALING_T, SIZES
from bench.timing import interleaved, quartiles

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
QUICK_SIZES = SIZES[:3]
TORCH_PAUSE = 0.02  # after a block of torch: its OpenMP workers spin only briefly


def measure_pair(case: Case, settings: dict, with_floor: bool) -> dict:
    """scratch and its torch twin (same weights), and scratch's matrix-product floor,
    interleaved. Records how much CPU other processes took meanwhile."""
    if settings["wait_quiet"]:
        env.wait_until_quiet(settings["wait_quiet"])
    counters, start = env.cpu_counters(), time.perf_counter()
    module = build_scratch(case)
    sides = {"scratch": scratch_step(case, module), "torch": torch_step(case, module)}
    if with_floor:
        sides["floor"] = floor_step(case)
    pause = settings["pause"]
    timing = interleaved(sides, block_seconds=settings["block_seconds"],
                         rounds=settings["rounds"], quick=settings["quick"],
                         pause_after={"scratch": pause, "floor": pause, "torch": TORCH_PAUSE})
    seconds = timing["seconds"]
    q1, ratio, q3 = quartiles([s / t for s, t in zip(seconds["scratch"], seconds["torch"])])
    row = {"case": case.to_dict(), "label": case.label(),
           "scratch_s": statistics.median(seconds["scratch"]),
           "torch_s": statistics.median(seconds["torch"]),
           "ratio": ratio, "ratio_q1": q1, "ratio_q3": q3,
           "scratch_rounds_s": seconds["scratch"], "torch_rounds_s": seconds["torch"],
           "calls_per_block": timing["number"], "rounds": timing["rounds"],
           "others_cores": env.others_cores(counters, env.cpu_counters(),
                                            time.perf_counter() - start)}
    if with_floor:
        row["floor_s"] = statistics.median(seconds["floor"])
        row["floor_rounds_s"] = seconds["floor"]
    return row


def progress(row: dict) -> None:
    floor = row.get("floor_s")
    extra = "" if floor is None else f", floor {report.ms(floor)} ms"
    others = row.get("others_cores")
    extra += "" if others is None else f", others {others:.2f} cores"
    print(f"  {row['label']:42s} scratch {report.ms(row['scratch_s']):>8s} ms  torch "
          f"{report.ms(row['torch_s']):>8s} ms  ratio {row['ratio']:.2f} "
          f"[{row['ratio_q1']:.2f}-{row['ratio_q3']:.2f}]{extra}", flush=True)


def torch_alone(rows: list[dict], threads: int, block_seconds: float) -> dict[str, float]:
    """torch's median per case, timed in a process of its own; keyed by label."""
    payload = [dict(row["case"], rounds=row["rounds"]) for row in rows]
    done = subprocess.run(
        [sys.executable, "-m", "bench.alone", str(threads), str(block_seconds)],
        input=json.dumps(payload), capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        print(f"  torch alone: the subprocess failed:\n{done.stderr[-2000:]}")
        return {}
    return {Case(**r["case"]).label(): statistics.median(r["seconds"])
            for r in json.loads(done.stdout)}


def peak_memory(case: Case, side: str, threads: int) -> dict | None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", side, str(threads), json.dumps(case.to_dict())],
        capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        print(f"  memory ({side}, {case.label()}): the subprocess failed:\n"
              f"{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout)


def parity_throughput() -> dict:
    """Run the parity harness's ci profile on the CPU, as `make parity` does (one thread per
    library), and read its case counts and times from its report."""
    if not (ROOT / "parity" / "__main__.py").exists():
        return {"skipped": "the parity package has no command line yet"}
    run_env = dict(os.environ)
    run_env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "parity", "--profile", "ci", "--device", "cpu"],
                          capture_output=True, text=True, cwd=ROOT, env=run_env, check=False)
    wall = time.perf_counter() - start
    groups = re.findall(r"(\d+) pinned \+ (\d+) explored cases in ([\d.]+) s", done.stdout)
    total = re.search(r"\((\d+) cases compared, ([\d.]+) s\)", done.stdout)
    if not groups or total is None:
        return {"skipped": f"could not read the harness's report (exit {done.returncode})",
                "tail": done.stdout[-1500:] + done.stderr[-1500:]}
    cases = sum(int(p) + int(e) for p, e, _ in groups)
    seconds = sum(float(s) for _, _, s in groups)
    return {"exit_status": done.returncode, "cases": cases, "seconds": seconds,
            "cases_per_second": cases / seconds, "report_cases": int(total.group(1)),
            "report_seconds": float(total.group(2)), "wall_seconds": wall}


def _quick_subset(args) -> tuple[list[str], list[str]]:
    """--quick measures time against T and memory for one kind and dtype: the LSTM in
    float64 (the exact oracle) when they were asked for."""
    kind = "lstm" if "lstm" in args.kinds else args.kinds[0]
    dtype = "float64" if "float64" in args.dtypes else args.dtypes[0]
    return [kind], [dtype]


def run(args) -> int:
    torch.set_num_threads(args.threads)
    # torch says so once per process; the table says which path torch takes anyway
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    quick = args.quick
    settings = {
        "quick": quick, "threads": args.threads, "rounds": args.rounds,
        "block_seconds": args.block_ms / 1e3,
        "pause": args.pause if args.pause is not None else (0.15 if args.threads > 1 else 0.0),
        "wait_quiet": args.wait_quiet,
    }
    sizes = args.sizes or (QUICK_SIZES if quick else SIZES)
    configs = args.configs or ([(1, 1)] if quick else list(CONFIGS))
    info = env.describe(args.threads)
    started = time.time()
    results: dict = {"environment": info, "settings": settings, "started": time.ctime(started),
                     "load_average_start": env.load_average()}

    print("scratch vs torch.nn on the CPU: forward + backward, seconds per call are medians "
          "over interleaved rounds")
    for line in env.header_lines(info):
        print("  " + line)
    print(f"  timing: blocks of at least {args.block_ms:.0f} ms, {settings['pause']:.2f} s pause "
          f"after each block of NumPy work; load average at start "
          f"{results['load_average_start']} (other work on the machine makes every figure "
          "noisier)\n")

    print("== pairs ==", flush=True)
    rows = []
    for case in grid(args.kinds, args.dtypes, sizes, configs):
        rows.append(measure_pair(case, settings, with_floor=not args.no_floor))
        progress(rows[-1])
    results["pairs"] = rows

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
                    row = measure_pair(Case(kind, dtype, T, B, I, H), settings, False)
                    progress(row)
                    points.append({"T": T, "scratch_s": row["scratch_s"],
                                   "torch_s": row["torch_s"], "ratio": row["ratio"]})
                series.append({"label": label, "points": points})
        results["scaling"] = series

    if not args.no_alone:
        print("\n== torch alone, in its own process (the check on the pairs) ==", flush=True)
        checked = [r for r in rows if (r["case"]["layers"], r["case"]["directions"]) == (1, 1)]
        alone = torch_alone(checked, args.threads, settings["block_seconds"])
        for row in rows:
            if row["label"] in alone:
                row["torch_alone_s"] = alone[row["label"]]
        print(f"  {len(alone)} cases timed")

    if not args.no_memory:
        print("\n== peak memory (each side in a fresh process) ==", flush=True)
        kinds, dtypes = _quick_subset(args) if quick else (args.kinds, args.dtypes)
        memory = []
        for kind in kinds:
            for dtype in dtypes:
                case = Case(kind, dtype, *args.memory_size)
                mine = peak_memory(case, "scratch", args.threads)
                theirs = peak_memory(case, "torch", args.threads)
                if mine is None:
                    continue
                entry = {"label": case.label(), "case": case.to_dict(),
                         "scratch_mib": mine["peak_mib"], "method": mine["method"],
                         "torch_mib": None if theirs is None else theirs["peak_mib"]}
                memory.append(entry)
                print(f"  {entry['label']:42s} scratch {entry['scratch_mib']:.0f} MiB  torch "
                      f"{entry['torch_mib'] or float('nan'):.0f} MiB", flush=True)
        results["memory"] = memory

    if not args.no_parity and (not quick or args.parity):
        print("\n== parity harness, ci profile, CPU ==", flush=True)
        results["parity"] = parity_throughput()
    else:
        results["parity"] = {"skipped": "--quick or --no-parity"}

    results["load_average_end"] = env.load_average()
    results["seconds"] = time.time() - started
    verdicts = targets.check(results)
    results["targets"] = [v.__dict__ for v in verdicts]

    print("\n\n== scratch / torch, forward + backward (ratio: median of the per-round ratios; "
          "floor: scratch's matrix products alone; others: cores other processes took "
          "meanwhile) ==")
    print(report.pairs_table(rows))
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

    path = args.json or RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json")
    report.write_json(results, path)
    print(f"\n{len(rows)} pairs in {results['seconds'] / 60:.1f} min; load average at the end "
          f"{results['load_average_end']}. Results: {path}")
    return 0
