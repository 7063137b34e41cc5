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

if sys.argv[1:2] == ["check"]:  # a student's check: runs with or without torch
    from parity.check import main as check_main

    sys.exit(check_main(sys.argv[2:]))

from parity.grading.cli import COMMANDS as GRADING_COMMANDS  # noqa: E402

if sys.argv[1:2] and sys.argv[1] in GRADING_COMMANDS:  # grading never imports torch
    from parity.grading.cli import main as grading_main

    sys.exit(grading_main(sys.argv[1:]))

import torch  # noqa: E402

torch.set_num_threads(1)

from parity.cli import main  # noqa: E402

sys.exit(main())
