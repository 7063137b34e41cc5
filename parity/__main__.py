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

# The one dispatcher of the command line: each command is routed here, once. The student's
# check runs with or without torch; the grader's commands never import torch; everything
# else is the parity harness (parity.cli), which runs torch with one thread.
command = sys.argv[1] if len(sys.argv) > 1 else ""
if command == "check":
    from parity.check import main as check_main

    sys.exit(check_main(sys.argv[2:]))
if command == "zoo":
    from parity.cli import zoo_main

    sys.exit(zoo_main(sys.argv[2:]))

from parity.grading.cli import COMMANDS as GRADING_COMMANDS  # noqa: E402

if command in GRADING_COMMANDS:
    sys.exit(GRADING_COMMANDS[command](sys.argv[2:]))

import torch  # noqa: E402

torch.set_num_threads(1)

from parity.cli import main  # noqa: E402

sys.exit(main())
