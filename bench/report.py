"""The printed tables and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from bench.choices import KIND_LABEL
from bench.targets import Verdict


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


def pairs_table(rows: list[dict]) -> str:
    header = ["kind", "dtype", "T,B,I,H", "LxD", "scratch ms", "torch ms", "ratio",
              "ratio q1-q3", "torch alone ms", "in/alone", "floor ms", "scratch/floor",
              "others"]
    body = []
    for r in rows:
        c = r["case"]
        alone = r.get("torch_alone_s")
        floor = r.get("floor_s")
        body.append([
            KIND_LABEL[c["kind"]], c["dtype"], f"{c['T']},{c['B']},{c['I']},{c['H']}",
            f"{c['layers']}x{c['directions']}", ms(r["scratch_s"]), ms(r["torch_s"]),
            f"{r['ratio']:.2f}", f"{r['ratio_q1']:.2f}-{r['ratio_q3']:.2f}", ms(alone),
            "-" if alone is None else f"{r['torch_s'] / alone:.2f}", ms(floor),
            "-" if floor is None else f"{r['scratch_s'] / floor:.2f}",
            "-" if r.get("others_cores") is None else f"{r['others_cores']:.2f}",
        ])
    return table(header, body)


def scaling_table(series: list[dict]) -> str:
    header = ["series", "T", "scratch ms", "torch ms", "ratio", "scratch / scratch(T=100)"]
    body = []
    for s in series:
        base = next((p["scratch_s"] for p in s["points"] if p["T"] == 100), None)
        for p in s["points"]:
            body.append([s["label"], str(p["T"]), ms(p["scratch_s"]), ms(p["torch_s"]),
                         f"{p['ratio']:.2f}",
                         "-" if base is None else f"{p['scratch_s'] / base:.2f}"])
    return table(header, body, left=1)


def memory_table(rows: list[dict]) -> str:
    header = ["case", "scratch MiB", "torch MiB", "scratch/torch"]
    body = [[m["label"], f"{m['scratch_mib']:.0f}",
             "-" if m.get("torch_mib") is None else f"{m['torch_mib']:.0f}",
             "-" if not m.get("torch_mib") else f"{m['scratch_mib'] / m['torch_mib']:.2f}"]
            for m in rows]
    return table(header, body, left=1)


def verdicts_text(verdicts: list[Verdict]) -> str:
    mark = {True: "PASS", False: "MISS", None: "n/a "}
    return "\n".join(f"  {mark[v.passed]}  {v.target}: {v.detail}" for v in verdicts)


def write_json(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str) + "\n")
