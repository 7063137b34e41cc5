"""The printed tables and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from bench.choices import KIND_LABEL
from bench.targets import Verdict
from bench.timing import geometric_mean

HEADLINE = ("scratch / torch alone: forward + backward, scratch and torch each timed in a "
            "process of its own, their blocks interleaved")


def table(header: list[str], rows: list[list[str]], left: int = 4) -> str:
    """Plain-text table: the first `left` columns left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells) -> str:
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    value = seconds * 1e3
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _size(c: dict) -> str:
    return f"{c['T']},{c['B']},{c['I']},{c['H']}"


def _spread(r: dict, key: str) -> str:
    return f"{r[key + '_q1']:.2f}-{r[key + '_q3']:.2f}"


def pairs_table(rows: list[dict]) -> str:
    header = ["kind", "dtype", "T,B,I,H", "LxD", "scratch ms", "torch alone ms", "ratio",
              "ratio q1-q3", "floor ms", "scratch/floor", "torch in process ms",
              "ratio in process", "in/alone", "others"]
    body = []
    for r in rows:
        c = r["case"]
        floor, inproc = r.get("floor_s"), r.get("torch_in_s")
        body.append([
            KIND_LABEL[c["kind"]], c["dtype"], _size(c), f"{c['layers']}x{c['directions']}",
            ms(r["scratch_s"]), ms(r["torch_alone_s"]), f"{r['ratio']:.2f}",
            _spread(r, "ratio"), ms(floor),
            "-" if floor is None else f"{r['scratch_s'] / floor:.2f}", ms(inproc),
            "-" if inproc is None else f"{r['ratio_in']:.2f}",
            "-" if inproc is None else f"{inproc / r['torch_alone_s']:.2f}",
            "-" if r.get("others_cores") is None else f"{r['others_cores']:.2f}",
        ])
    return table(header, body)


def side_by_side_table(rows: list[dict]) -> str:
    header = ["kind", "dtype", "T,B,I,H", "LxD", "old ms", "new ms", "new/old",
              "new/old q1-q3", "torch alone ms", "old/torch", "new/torch", "others"]
    body = []
    for r in rows:
        if "baseline_s" not in r:
            continue
        c = r["case"]
        body.append([
            KIND_LABEL[c["kind"]], c["dtype"], _size(c), f"{c['layers']}x{c['directions']}",
            ms(r["baseline_s"]), ms(r["scratch_s"]), f"{r['new_over_old']:.2f}",
            _spread(r, "new_over_old"), ms(r["torch_alone_s"]), f"{r['baseline_ratio']:.2f}",
            f"{r['ratio']:.2f}",
            "-" if r.get("others_cores") is None else f"{r['others_cores']:.2f}",
        ])
    return table(header, body)


def side_by_side_summary(rows: list[dict]) -> str:
    ratios = [r["new_over_old"] for r in rows if "new_over_old" in r]
    worst = max((r for r in rows if "new_over_old" in r), key=lambda r: r["new_over_old"])
    return (f"  new/old over {len(ratios)} cases: geometric mean {geometric_mean(ratios):.3f}, "
            f"from {min(ratios):.2f} to {max(ratios):.2f} (worst: {worst['label']})")


def scaling_table(series: list[dict]) -> str:
    header = ["series", "T", "scratch ms", "torch alone ms", "ratio",
              "scratch / scratch(T=100)"]
    body = []
    for s in series:
        base = next((p["scratch_s"] for p in s["points"] if p["T"] == 100), None)
        for p in s["points"]:
            body.append([s["label"], str(p["T"]), ms(p["scratch_s"]), ms(p["torch_alone_s"]),
                         f"{p['ratio']:.2f}",
                         "-" if base is None else f"{p['scratch_s'] / base:.2f}"])
    return table(header, body, left=1)


def memory_table(rows: list[dict]) -> str:
    old = any("baseline_mib" in m for m in rows)
    header = ["case", "scratch MiB", "torch MiB", "scratch/torch"] + (
        ["old scratch MiB"] if old else [])
    body = []
    for m in rows:
        line = [m["label"], f"{m['scratch_mib']:.0f}",
                "-" if m.get("torch_mib") is None else f"{m['torch_mib']:.0f}",
                "-" if not m.get("torch_mib") else f"{m['scratch_mib'] / m['torch_mib']:.2f}"]
        if old:
            line.append("-" if m.get("baseline_mib") is None else f"{m['baseline_mib']:.0f}")
        body.append(line)
    return table(header, body, left=1)


def verdicts_text(verdicts: list[Verdict]) -> str:
    mark = {True: "PASS", False: "MISS", None: "n/a "}
    return "\n".join(f"  {mark[v.passed]}  {v.target}: {v.detail}" for v in verdicts)


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
