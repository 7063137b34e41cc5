"""The machine and the libraries, for the table's header: which BLAS, how many threads.

``pin_threads`` must run before NumPy or torch is imported: OpenBLAS, OpenMP and MKL read
their thread counts from the environment when they load.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Settings of the environment that change what the BLAS libraries do; shown when set.
BLAS_VARIABLES = THREAD_VARIABLES + ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                     "OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY",
                                     "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_ENABLE_INSTRUCTIONS",
                                     "ONEDNN_MAX_CPU_ISA")


def pin_threads(threads: int) -> dict[str, str]:
    """Give NumPy's BLAS and torch the same thread count (call before importing either)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    return {name: os.environ[name] for name in THREAD_VARIABLES}


def _openblas_runtime() -> dict:
    """OpenBLAS's own report (core type chosen at run time, thread count), best effort: the
    library is found among those the process has loaded."""
    info: dict = {}
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return info
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                core = getattr(lib, f"{prefix}get_corename{suffix}", None)
                if core is None:
                    continue
                core.restype = ctypes.c_char_p
                info["core"] = core().decode()
                threads = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if threads is not None:
                    threads.restype = ctypes.c_int
                    info["threads"] = int(threads())
                config = getattr(lib, f"{prefix}get_config{suffix}", None)
                if config is not None:
                    config.restype = ctypes.c_char_p
                    info["config"] = config().decode().strip()
                return info
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_counters() -> tuple[int, int] | None:
    """(busy jiffies of the whole machine, jiffies of this process), or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        with open("/proc/self/stat") as own:
            mine = own.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, int(mine[11]) + int(mine[12])  # utime + stime


def others_cores(before, after, seconds: float) -> float | None:
    """Cores' worth of CPU that other processes (and the hypervisor) took between two
    cpu_counters() readings `seconds` apart: how much else was running during a measurement."""
    if before is None or after is None or seconds <= 0:
        return None
    busy, mine = after[0] - before[0], after[1] - before[1]
    return round(max(0, busy - mine) / os.sysconf("SC_CLK_TCK") / seconds, 2)


def wait_until_quiet(max_seconds: float, threshold: float = 0.3) -> float | None:
    """Sleep in half-second looks until other processes use less than `threshold` cores, or
    `max_seconds` have passed; returns what the last look saw."""
    import time

    deadline = time.perf_counter() + max_seconds
    while True:
        before, start = cpu_counters(), time.perf_counter()
        time.sleep(0.5)
        seen = others_cores(before, cpu_counters(), time.perf_counter() - start)
        if seen is None or seen < threshold or time.perf_counter() >= deadline:
            return seen


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def describe(threads: int) -> dict:
    """Everything the header says, as a dict (it goes into the JSON as well)."""
    import numpy as np

    info: dict = {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads_each_side": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "environment": {k: os.environ[k] for k in BLAS_VARIABLES if k in os.environ},
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy has no dict mode: the header says unknown
        info["numpy_blas"] = "unknown"
    info["openblas_runtime"] = _openblas_runtime()

    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    isa = re.search(r"CPU capability usage: (\w+)", config)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v([\d.]+)", config)
    info["torch"] = torch.__version__
    info["torch_blas"] = blas.group(1) if blas else "unknown"
    info["torch_cpu_capability"] = isa.group(1) if isa else "unknown"
    info["torch_onednn"] = onednn.group(1) if onednn else "none"
    info["torch_threads"] = torch.get_num_threads()
    return info


def header_lines(info: dict) -> list[str]:
    ob = info.get("openblas_runtime", {})
    core = f", core {ob['core']}" if "core" in ob else ""
    numpy_threads = ob.get("threads", info["threads_each_side"])
    env = info["environment"]
    env_text = " ".join(f"{k}={v}" for k, v in env.items()) or "(none)"
    return [
        f"CPU: {info['cpu']}, {info['cpu_count']} cores; Python {info['python']}",
        f"scratch: NumPy {info['numpy']} with {info['numpy_blas']}{core}, "
        f"{_threads(numpy_threads)}",
        f"torch:   {info['torch']} CPU, BLAS {info['torch_blas']}, oneDNN {info['torch_onednn']} "
        f"(float32 LSTM), ISA {info['torch_cpu_capability']}, {_threads(info['torch_threads'])}",
        f"environment: {env_text}",
    ]


def _threads(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")
