"""The machine and the libraries, for the table's header: which BLAS, how many threads.

``pin_threads`` must run before NumPy or torch is imported: OpenBLAS, OpenMP and MKL read
their thread counts from the environment when they load.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
from pathlib import Path

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


def use_tree(tree: str | Path | None) -> str:
    """Import ``scratch`` from the checkout `tree` (this one when None), and say from where.

    Call before anything imports scratch: the tree goes first on sys.path, ahead of the
    installed (editable) one. The benchmark's own code is already imported from this
    checkout, so only scratch (and torch_impl, where a process needs the torch twin) come
    from the tree. Returns scratch.__file__; raises when scratch came from elsewhere.
    """
    import sys

    if tree is not None:
        root = Path(tree).resolve()
        if not (root / "scratch" / "__init__.py").is_file():
            raise SystemExit(f"--tree/--baseline-tree: {root} has no scratch/__init__.py; "
                             "expected a checkout of this project")
        if "scratch" in sys.modules:
            raise RuntimeError("scratch was imported before its tree was chosen")
        sys.path.insert(0, str(root))
    import scratch

    where = Path(scratch.__file__).resolve()
    if tree is not None and not where.is_relative_to(Path(tree).resolve()):
        raise SystemExit(f"scratch was imported from {where}, not from the tree {tree}")
    return str(where)


def tree_info(tree: str | Path) -> dict:
    """The checkout's path, commit and whether it has uncommitted changes (best effort)."""
    import subprocess

    info: dict = {"path": str(Path(tree).resolve())}
    try:
        head = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--",
                                "scratch"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return info
    info["commit"] = head
    info["scratch_changed_since_commit"] = bool(dirty.strip())
    return info


def _jiffies(pid: int | str) -> int:
    with open(f"/proc/{pid}/stat") as own:
        fields = own.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_counters(pids: tuple[int, ...] = ()) -> tuple[int, int] | None:
    """(busy jiffies of the whole machine, jiffies of this process and of the processes
    `pids`, the benchmark's own workers), or None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        mine = _jiffies("self")
        for pid in pids:
            try:
                mine += _jiffies(pid)
            except OSError:  # a worker that has exited
                pass
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, mine


def others_cores(before, after, seconds: float) -> float | None:
    """Cores' worth of CPU that other processes (and the hypervisor) took between two
    cpu_counters() readings `seconds` apart: how much else was running during a measurement."""
    if before is None or after is None or seconds <= 0:
        return None
    busy, mine = after[0] - before[0], after[1] - before[1]
    return round(max(0, busy - mine) / os.sysconf("SC_CLK_TCK") / seconds, 2)


def wait_until_quiet(max_seconds: float, threshold: float = 0.3,
                     pids: tuple[int, ...] = ()) -> float | None:
    """Sleep in half-second looks until other processes (not this one, nor its workers
    `pids`) use less than `threshold` cores, or `max_seconds` have passed; returns what the
    last look saw."""
    import time

    deadline = time.perf_counter() + max_seconds
    while True:
        before, start = cpu_counters(pids), time.perf_counter()
        time.sleep(0.5)
        seen = others_cores(before, cpu_counters(pids), time.perf_counter() - start)
        if seen is None or seen < threshold or time.perf_counter() >= deadline:
            return seen


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def numpy_info() -> dict:
    """NumPy's version, its BLAS and what OpenBLAS chose at run time, in this process."""
    import numpy as np

    info: dict = {"numpy": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy has no dict mode: the header says unknown
        info["numpy_blas"] = "unknown"
    info["openblas_runtime"] = _openblas_runtime()
    return info


def torch_info() -> dict:
    """torch's version, BLAS, oneDNN, instruction set and thread count, in this process."""
    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    isa = re.search(r"CPU capability usage: (\w+)", config)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v([\d.]+)", config)
    return {"torch": torch.__version__, "torch_blas": blas.group(1) if blas else "unknown",
            "torch_cpu_capability": isa.group(1) if isa else "unknown",
            "torch_onednn": onednn.group(1) if onednn else "none",
            "torch_threads": torch.get_num_threads()}


def machine(threads: int) -> dict:
    """The machine's part of the header, as a dict (it goes into the JSON as well); the
    libraries' parts come from numpy_info() and torch_info() of the processes that time."""
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads_each_side": threads,
        "python": platform.python_version(),
        "environment": {k: os.environ[k] for k in BLAS_VARIABLES if k in os.environ},
    }


def header_lines(info: dict) -> list[str]:
    ob = info.get("openblas_runtime", {})
    core = f", core {ob['core']}" if "core" in ob else ""
    numpy_threads = ob.get("threads", info["threads_each_side"])
    env = info["environment"]
    env_text = " ".join(f"{k}={v}" for k, v in env.items()) or "(none)"
    lines = [
        f"CPU: {info['cpu']}, {info['cpu_count']} cores; Python {info['python']}",
        f"scratch: NumPy {info['numpy']} with {info['numpy_blas']}{core}, "
        f"{threads_text(numpy_threads)}",
        f"torch:   {info['torch']} CPU, BLAS {info['torch_blas']}, oneDNN {info['torch_onednn']} "
        f"(float32 LSTM), ISA {info['torch_cpu_capability']}, "
        f"{threads_text(info['torch_threads'])}",
        f"environment: {env_text}",
        f"each side in a process of its own: scratch's never loads torch, torch's multiplies "
        f"no NumPy matrix; {threads_text(info['threads_each_side'])} a side",
    ]
    for name, tree in info.get("trees", {}).items():
        lines.append(f"{name} tree: {tree_text(tree)}, scratch from {tree['scratch_file']}")
    return lines


def tree_text(tree: dict) -> str:
    """A checkout, in a few words: its path and commit."""
    text = tree["path"]
    if "commit" in tree:
        text += f" at {tree['commit'].split()[0]}"
        if tree.get("scratch_changed_since_commit"):
            text += " (scratch/ changed since)"
    return text


def threads_text(n: int) -> str:
    """'1 thread', '2 threads'."""
    return f"{n} thread" + ("" if n == 1 else "s")
