"""Peak memory of one forward + backward, each side in a fresh process of its own.

    python -m bench.memory SIDE THREADS '<case JSON>' [TREE]   (SIDE: scratch or torch;
                                                               prints JSON)

The figure is the growth of the process's resident memory at its peak during the call: the
kernel's high-water mark (VmHWM) is reset just before (``/proc/self/clear_refs``), and the
resident size then (VmRSS) is subtracted. Model, input and upstream gradient exist before;
what counts is what the call allocates: the caches of the forward pass, the gradients, the
output and every temporary. The scratch process never imports torch, so that torch's
libraries do not share its address space; it imports scratch from the checkout TREE when
given (bench.env.use_tree).
"""

from __future__ import annotations

import json
import resource
import sys
import warnings

from bench.env import pin_threads, use_tree


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the high-water mark of resident memory (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    side, threads, fields = argv[0], int(argv[1]), json.loads(argv[2])
    pin_threads(threads)
    if side == "scratch":
        use_tree(argv[3] if len(argv) > 3 else None)
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
    from bench.cases import Case, scratch_step, torch_step

    case = Case(**fields)
    tiny = Case(case.kind, case.dtype, 3, 2, 3, 4, case.layers, case.directions)
    if side == "scratch":
        step, warm = scratch_step(case), scratch_step(tiny)
    elif side == "torch":
        import torch

        torch.set_num_threads(threads)
        step, warm = torch_step(case), torch_step(tiny)
    else:
        raise SystemExit(f"SIDE must be scratch or torch, got {side!r}")
    warm()  # start thread pools and generate kernels on a tiny case, outside the figure

    method = "VmHWM - VmRSS (high-water mark reset before the call)"
    if _reset_peak() and _status_kib("VmRSS") is not None:
        before = _status_kib("VmRSS")
        step()
        peak = _status_kib("VmHWM")
    else:  # no reset: the process's peak so far, less its size before the call
        method = "ru_maxrss - VmRSS (no reset: an upper bound)"
        before = _status_kib("VmRSS") or 0
        step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert before is not None and peak is not None
    json.dump({"side": side, "case": fields, "peak_mib": (peak - before) / 1024,
               "method": method}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
