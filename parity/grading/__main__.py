"""``python -m parity.grading COMMAND ...``: the grading commands without torch (see cli).

One thread per BLAS library, set before NumPy loads: graders run side by side.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402

from parity.grading.cli import main  # noqa: E402

sys.exit(main())
