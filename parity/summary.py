"""The summary printed at the end of a run: plain-text tables."""

from __future__ import annotations

from itertools import chain

from parity.compare import QUANTITIES
from parity.runner import OPTION_COLUMNS, Run, Stats
from parity.spec import ALL_MODES
from parity.strategies import DTYPES


def table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> str:
    """Columns padded to their widest cell; those in ``left`` left-aligned, others right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i in left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def cases_table(stats: Stats, modes: list[str]) -> str:
    header = ["mode", "cases", *OPTION_COLUMNS]
    rows = []
    for mode in [k for k in ALL_MODES if k in modes]:
        row = [mode, str(stats.cases[mode])]
        for option in OPTION_COLUMNS:
            n = stats.options[mode, option]
            applies = option != "proj" or mode == "LSTM"
            row.append(str(n) if applies else "-")
        rows.append(row)
    total = ["all", str(sum(stats.cases.values()))]
    total += [str(sum(stats.options[k, o] for k in modes)) for o in OPTION_COLUMNS]
    return table(header, [*rows, total])


def errors_table(stats: Stats) -> str:
    """Largest error per quantity and dtype, against the tolerance where it was seen."""
    header = ["tensor", "float64 error", "tol", "float32 error", "tol", "worst error/tol"]
    rows = []
    for quantity in QUANTITIES:
        seen = {d: stats.errors[quantity, d] for d in DTYPES if (quantity, d) in stats.errors}
        if seen:
            cells = [[f"{seen[d].error:.2e}", f"{seen[d].tol:.1e}"] if d in seen else ["-", "-"]
                     for d in DTYPES]
            ratio = max(e.ratio for e in seen.values())
            rows.append([quantity, *chain.from_iterable(cells), f"{ratio:.2e}"])
    return table(header, rows)


def verdict(run: Run) -> str:
    """pass, or FAIL with what failed: an error raised, the first tensors that diverged."""
    if run.failure is None:
        return "pass"
    names = [c.name for c in run.failure.failures]
    diverged = "diverged: " + ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
    what = (["raised an error"] if run.failure.crash else []) + ([diverged] if names else [])
    return f"FAIL ({', '.join(what or ['nothing was compared'])})"


def modes_table(runs: list[Run]) -> str:
    header = ["mode", "device", "pinned", "explored", "seconds", "result"]
    rows = [[o.name, o.device, str(o.pinned), str(o.explored), f"{o.seconds:.1f}", verdict(o)]
            for o in runs]
    return table(header, rows, left=(0, 1, 5))


def training_table(rows: list[dict]) -> str:
    header = ["name", "steps", "max_param_diff", "max_loss_diff", "tolerance", "result"]
    body = [[str(r.get("name")), str(r.get("steps")), f"{float(r.get('max_param_diff', 0)):.2e}",
             f"{float(r.get('max_loss_diff', 0)):.2e}", f"{float(r.get('tolerance', 0)):.1e}",
             "pass" if r.get("passed") else "FAIL"] for r in rows]
    return table(header, body, left=(0, 5))


def units_table(runs: list[Run]) -> str:
    """One row per function group: cases (pinned + drawn), per dtype, the options drawn, the
    largest error against its tolerance, the result."""
    header = ["group", "cases", "float64", "float32", "options (cases)", "float64 error",
              "float32 error", "worst error/tol", "result"]
    rows = []
    for o in runs:
        stats = o.stats
        options = ", ".join(f"{k} {n}" for (_, k), n in sorted(stats.options.items())
                            if k not in DTYPES)
        seen = {dt for _, dt in stats.errors}  # the dtypes with a measured error
        errors = [f"{stats.max_error(d).error:.1e}" if d in seen else "-" for d in DTYPES]
        ratio = max((e.ratio for e in stats.errors.values()), default=0.0)
        rows.append([o.name, str(stats.cases[o.name]),
                     *[str(stats.options[o.name, d]) for d in DTYPES], options or "-", *errors,
                     f"{ratio:.2e}", verdict(o)])
    return table(header, rows, left=(0, 4, 8))
