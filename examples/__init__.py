"""Runnable examples: ``python -m examples.sequence_regression``, ``examples.char_lm``,
``examples.gradient_flow`` (or ``make demo``). Each writes a PNG into ``out/``.

The examples alternate NumPy and torch calls; with several threads each, the two libraries'
thread pools fight over the cores (OpenBLAS workers spin while torch works). One thread each,
set here before NumPy is first imported, keeps both at full speed for these small models.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
