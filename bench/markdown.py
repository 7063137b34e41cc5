"""A saved run as Markdown, the form docs/performance.md shows it in.

    python -m bench.markdown bench/results/bench-<time>.json > run.md

No NumPy or torch here: it only reads the JSON that ``python -m bench`` wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.choices import KIND_LABEL
from bench.env import threads_text, tree_text
from bench.report import ms
from bench.timing import geometric_mean


def md_table(header: list[str], rows: list[list[str]], left: int) -> str:
    """A Markdown table, the first `left` columns left-aligned, the others right-aligned."""
    align = ["---" if i < left else "---:" for i in range(len(header))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _size(case: dict) -> str:
    return f"{case['T']},{case['B']},{case['I']},{case['H']}"


def header(results: dict) -> str:
    e, s = results["environment"], results["settings"]
    blas = e.get("openblas_runtime") or {}
    env = " ".join(f"`{k}={v}`" for k, v in e.get("environment", {}).items())
    wait = f", waiting up to {s['wait_quiet']:.0f} s before each case for an idle machine" \
        if s.get("wait_quiet") else ""
    return "\n".join([
        f"Run of {results['started']}, {results['seconds'] / 60:.0f} minutes{wait}; load "
        f"average {results['load_average_start']} at the start, "
        f"{results['load_average_end']} at the end.",
        "",
        f"- CPU: {e['cpu']}, {e['cpu_count']} cores; Python {e['python']}",
        f"- scratch: NumPy {e['numpy']} with {e['numpy_blas']}, OpenBLAS core "
        f"{blas.get('core', '?')}, {threads_text(blas['threads']) if 'threads' in blas else '?'}",
        f"- torch {e['torch']}, BLAS {e['torch_blas']}, oneDNN {e['torch_onednn']}, ISA "
        f"{e['torch_cpu_capability']}, {threads_text(e['torch_threads'])}",
        f"- environment: {env}",
        f"- each side timed in a process of its own (scratch's never loads torch, torch's "
        f"multiplies no NumPy matrix), {threads_text(e['threads_each_side'])} a side",
        *(f"- {name} tree: `{tree_text(tree)}`" for name, tree in e.get("trees", {}).items()),
    ])


def _spread(r: dict, key: str) -> str:
    return f"{r[key + '_q1']:.2f}-{r[key + '_q3']:.2f}"


def pairs_1x1(rows: list[dict]) -> str:
    ones = [r for r in rows if (r["case"]["layers"], r["case"]["directions"]) == (1, 1)]
    inproc = any("torch_in_s" in r for r in ones)  # the secondary columns, when measured
    body = []
    for r in ones:
        c = r["case"]
        floor = r.get("floor_s")
        line = [KIND_LABEL[c["kind"]], c["dtype"], _size(c), ms(r["scratch_s"]),
                ms(r["torch_alone_s"]), f"{r['ratio']:.2f}", _spread(r, "ratio"),
                "-" if floor is None else f"{r['scratch_s'] / floor:.2f}"]
        if inproc:
            line += [ms(r.get("torch_in_s")),
                     "-" if "ratio_in" not in r else f"{r['ratio_in']:.2f}"]
        body.append(line)
    return md_table(["kind", "dtype", "T,B,I,H", "scratch", "torch alone", "ratio", "q1-q3",
                     "scratch/floor"] + (["torch in process", "ratio in process"]
                                         if inproc else []), body, left=3)


def stackings(rows: list[dict]) -> str:
    """Ratio scratch/torch alone per case, one column per layers x directions."""
    configs: list[str] = []
    table: dict[tuple, dict[str, str]] = {}
    for r in rows:
        c = r["case"]
        config = f"{c['layers']}x{c['directions']}"
        if config not in configs:
            configs.append(config)
        key = (KIND_LABEL[c["kind"]], c["dtype"], _size(c))
        table.setdefault(key, {})[config] = f"{r['ratio']:.2f}"
    body = [[*key, *(cells.get(k, "-") for k in configs)] for key, cells in table.items()]
    return md_table(["kind", "dtype", "T,B,I,H", *configs], body, left=3)


def side_by_side(rows: list[dict]) -> str:
    body = []
    for r in rows:
        if "baseline_s" not in r:
            continue
        c = r["case"]
        config = f"{c['layers']}x{c['directions']}"
        body.append([KIND_LABEL[c["kind"]], c["dtype"], _size(c), config, ms(r["baseline_s"]),
                     ms(r["scratch_s"]), f"{r['new_over_old']:.2f}",
                     _spread(r, "new_over_old"), ms(r["torch_alone_s"]),
                     f"{r['baseline_ratio']:.2f}", f"{r['ratio']:.2f}"])
    ratios = [r["new_over_old"] for r in rows if "new_over_old" in r]
    return md_table(["kind", "dtype", "T,B,I,H", "LxD", "old", "new", "new/old", "q1-q3",
                     "torch alone", "old/torch", "new/torch"], body, left=4) + (
        f"\n\nnew/old over {len(ratios)} cases: geometric mean "
        f"**{geometric_mean(ratios):.3f}**, from {min(ratios):.2f} to {max(ratios):.2f}.")


def scaling(series: list[dict]) -> str:
    Ts = [p["T"] for p in series[0]["points"]]
    body = []
    for s in series:
        by_T = {p["T"]: p for p in s["points"]}
        first, last = by_T[Ts[0]], by_T[Ts[-1]]
        body.append([s["label"].split(" B=")[0], *(ms(by_T[T]["scratch_s"]) for T in Ts),
                     f"{last['scratch_s'] / first['scratch_s']:.2f}",
                     f"{last['torch_alone_s'] / first['torch_alone_s']:.2f}",
                     f"{last['ratio']:.2f}"])
    return md_table(["series", *(f"T={T}" for T in Ts), f"T={Ts[-1]} / T={Ts[0]}",
                     "torch's", f"ratio to torch alone at T={Ts[-1]}"], body, left=1)


def memory(rows: list[dict]) -> str:
    old = any("baseline_mib" in m for m in rows)
    body = []
    for m in rows:
        line = [m["label"].split(" (")[0], f"{m['scratch_mib']:.0f}",
                "-" if m.get("torch_mib") is None else f"{m['torch_mib']:.0f}",
                "-" if not m.get("torch_mib") else f"{m['scratch_mib'] / m['torch_mib']:.2f}"]
        if old:
            line.append("-" if m.get("baseline_mib") is None else f"{m['baseline_mib']:.0f}")
        body.append(line)
    return md_table(["case", "scratch", "torch", "scratch/torch"] + (
        ["old scratch"] if old else []), body, left=1)


def targets(verdicts: list[dict]) -> str:
    word = {True: "met", False: "**missed**", None: "not measured"}
    return "\n".join(f"- {word[v['passed']]}: {v['target']} ({v['detail']})" for v in verdicts)


def markdown(results: dict) -> str:
    rows = results["pairs"]
    parts = [header(results), "", "### scratch against torch alone, one layer, one direction",
             "", "Milliseconds per forward + backward call (medians); scratch and torch each "
             "timed alone in a process of its own, their blocks interleaved; ratio = median "
             "of the per-round ratios scratch / torch alone, with its quartiles; floor = "
             "scratch's matrix products alone; torch in process = torch timed in one process "
             "with scratch (secondary: it reads torch slower when NumPy's threads spin beside "
             "it).", "", pairs_1x1(rows)]
    if any((r["case"]["layers"], r["case"]["directions"]) != (1, 1) for r in rows):
        parts += ["", "### Every stacking", "",
                  "Ratio scratch / torch alone (median of rounds), layers x directions:", "",
                  stackings(rows)]
    if any("baseline_s" in r for r in rows):
        trees = results["environment"]["trees"]
        parts += ["", "### Side by side: the baseline tree (old) and this one (new)", "",
                  f"new = `{tree_text(trees['scratch'])}`, old = "
                  f"`{tree_text(trees['baseline'])}`; each scratch in a process of its own, "
                  "in the same rounds as torch alone; milliseconds per call; new/old = "
                  "median of the per-round ratios, with its quartiles.", "",
                  side_by_side(rows)]
    if results.get("scaling"):
        parts += ["", "### Time against T (milliseconds; one layer, one direction)", "",
                  scaling(results["scaling"])]
    if results.get("memory"):
        parts += ["", f"### Peak memory of one call at {_size(results['memory'][0]['case'])} "
                  "(MiB)", "", memory(results["memory"])]
    parity = results.get("parity", {})
    if "cases_per_second" in parity:
        parts += ["", "### Parity harness", "",
                  f"`python -m parity --profile ci --device cpu`, one thread per library: "
                  f"{parity['cases']} cases in {parity['seconds']:.1f} s of comparisons, "
                  f"**{parity['cases_per_second']:.0f} cases per second**; the whole run "
                  f"{parity['wall_seconds']:.1f} s."]
    parts += ["", "### The targets", "", targets(results["targets"])]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    sys.stdout.write(markdown(json.loads(Path(argv[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
