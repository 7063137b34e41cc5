"""The performance targets (issues 6 and 11), checked against one run's results.

Each target is a bound on a measured figure; ``check`` returns one line per target with the
worst case measured, or says that the run did not measure what the target needs. Every ratio
to torch is the headline's: scratch and torch each timed alone in a process of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SMALL_SIZES = ((10, 1, 4, 8), (50, 16, 32, 64))  # "the two smallest sizes"
LARGEST = (200, 64, 256, 512)


@dataclass
class Verdict:
    target: str
    passed: bool | None  # None: not measured in this run
    detail: str


def _ratio_target(rows, name, kinds, dtypes, bound_of, chosen=None) -> Verdict:
    """Worst scratch/torch ratio (median over rounds) of the rows of these kinds and dtypes
    (or of the rows `chosen`), each against its own bound (bound_of(size))."""
    if chosen is None:
        chosen = [r for r in rows
                  if r["case"]["kind"] in kinds and r["case"]["dtype"] in dtypes]
    if not chosen:
        return Verdict(name, None, "not measured in this run")
    worst = max(chosen, key=lambda r: r["ratio"] / bound_of(_size(r)))
    bound = bound_of(_size(worst))
    return Verdict(name, worst["ratio"] <= bound,
                   f"worst {worst['ratio']:.2f} (bound {bound:.2f}) at {worst['label']}; "
                   f"{len(chosen)} cases")


def _size(row) -> tuple:
    c = row["case"]
    return (c["T"], c["B"], c["I"], c["H"])


def check(results: dict) -> list[Verdict]:
    rows = results.get("pairs", [])
    verdicts = [
        _ratio_target(rows, "RNN and GRU: scratch <= 1.0x torch at every size, <= 0.8x at "
                      "the two smallest", {"rnn", "gru"}, {"float32", "float64"},
                      lambda s: 0.8 if s in SMALL_SIZES else 1.0),
        _ratio_target(rows, "LSTM float64: scratch <= 0.8x torch at every size",
                      {"lstm", "lstmp"}, {"float64"}, lambda s: 0.8),
        _ratio_target(rows, "LSTM float32 (oneDNN): scratch <= 1.2x torch from "
                      "(100,32,128,256) up, <= 1.5x below", {"lstm", "lstmp"}, {"float32"},
                      lambda s: 1.2 if s[0] >= 100 else 1.5),
    ]

    verdicts += before_and_after(rows)

    largest = [r for r in rows if _size(r) == LARGEST and r.get("floor_s")]
    if largest:
        worst = max(largest, key=lambda r: r["scratch_s"] / r["floor_s"])
        ratio = worst["scratch_s"] / worst["floor_s"]
        verdicts.append(Verdict("largest size: scratch <= 1.3x its matrix-product floor",
                                ratio <= 1.3, f"worst {ratio:.2f} at {worst['label']}"))
    else:
        verdicts.append(Verdict("largest size: scratch <= 1.3x its matrix-product floor",
                                None, "largest size not measured in this run"))

    growths = []
    for series in results.get("scaling", []):
        by_t = {p["T"]: p["scratch_s"] for p in series["points"]}
        if 100 in by_t and 800 in by_t:
            growths.append((by_t[800] / by_t[100], series["label"]))
    if growths:
        growth, label = max(growths)
        verdicts.append(Verdict("time linear in T: T=800 costs <= 8.8x T=100", growth <= 8.8,
                                f"worst {growth:.2f}x for {label}"))
    else:
        verdicts.append(Verdict("time linear in T: T=800 costs <= 8.8x T=100", None,
                                "not measured in this run"))

    memory = [m for m in results.get("memory", []) if m.get("torch_mib")]
    if memory:
        worst = max(memory, key=lambda m: m["scratch_mib"] / m["torch_mib"])
        ratio = worst["scratch_mib"] / worst["torch_mib"]
        verdicts.append(Verdict("peak memory at the largest size <= 1.5x torch's",
                                ratio <= 1.5, f"worst {ratio:.2f} at {worst['label']}"))
    else:
        verdicts.append(Verdict("peak memory at the largest size <= 1.5x torch's", None,
                                "not measured in this run"))
    return verdicts


SLOWER_BOUND, GEOMEAN_BOUND = 1.4, 1.2  # new / old, per case and over all cases


def before_and_after(rows: list[dict]) -> list[Verdict]:
    """Issue 11's bounds: the rewrite of the study core against the tree before it
    (--baseline-tree): no case more than 1.4x slower, 1.2x in the geometric mean; and the
    RNN, the GRU and the float64 LSTM (with or without a projection) at or under 1.0x torch
    alone at the two smallest sizes."""
    verdicts = []
    compared = [r for r in rows if "new_over_old" in r]
    name = f"no case more than {SLOWER_BOUND}x slower than the baseline tree"
    gname = f"new/old geometric mean over all cases <= {GEOMEAN_BOUND}x"
    if compared:
        worst = max(compared, key=lambda r: r["new_over_old"])
        verdicts.append(Verdict(name, worst["new_over_old"] <= SLOWER_BOUND,
                                f"worst {worst['new_over_old']:.2f} at {worst['label']}; "
                                f"{len(compared)} cases"))
        mean = math.exp(sum(math.log(r["new_over_old"]) for r in compared) / len(compared))
        verdicts.append(Verdict(gname, mean <= GEOMEAN_BOUND,
                                f"{mean:.3f} over {len(compared)} cases"))
    else:
        verdicts += [Verdict(n, None, "no --baseline-tree in this run") for n in (name, gname)]
    small = [r for r in rows if _size(r) in SMALL_SIZES and (
        r["case"]["kind"] in ("rnn", "gru") or r["case"]["dtype"] == "float64")]
    verdicts.append(_ratio_target(rows, "RNN, GRU and float64 LSTM: scratch <= 1.0x torch "
                                  "at the two smallest sizes", (), (), lambda s: 1.0,
                                  chosen=small))
    return verdicts
