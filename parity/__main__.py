"""``python -m parity``: see parity.cli.

Threads are pinned here, before NumPy or torch is imported: the harness alternates the two in
every case, and with several threads each they fight over the cores (OpenBLAS's idle workers
spin while torch works) and run many times slower.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# bitwise-repeatable cuBLAS on a GPU; harmless elsewhere
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import sys  # noqa: E402


def main(argv: list[str]) -> int:
    """The one dispatcher of the command line: each command is routed here, once. The
    student's check runs with or without torch; the grader's commands never import torch;
    everything else is the parity harness (parity.cli), which runs torch with one thread."""
    command = argv[0] if argv else ""
    if command == "check":
        from parity.check import main as check_main

        return check_main(argv[1:])
    if command == "zoo":
        from parity.cli import zoo_main

        return zoo_main(argv[1:])
    from parity.grading.cli import COMMANDS as GRADING_COMMANDS

    if command in GRADING_COMMANDS:
        return GRADING_COMMANDS[command](argv[1:])
    import torch

    torch.set_num_threads(1)
    from parity.cli import main as harness_main

    return harness_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
