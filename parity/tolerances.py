"""The one place where the parity harness decides how close is close enough.

The criterion, element by element, for a tensor ``impl`` checked against the torch tensor
``ref`` of the same case:

    |impl - ref| <= tol * max(1, max |ref|)

``max |ref|`` is taken over the whole tensor: an error is measured against the size of the
tensor it sits in, so a gradient summed over many steps and sequences (large) may be off by
more in absolute terms than an output in (-1, 1), and small elements of a large tensor are
not held to a relative bound that rounding of their large neighbours cannot meet. Below
magnitude 1 the bound is absolute.

float64 is the exact oracle. Both sides compute the same sums in a possibly different order,
so they differ by a few units in the last place of the largest terms (seen: ~1e-16 for
outputs, ~1e-15 for gradients over tens of steps). ``FLOAT64_TOL = 1e-10`` leaves five orders
of magnitude for rounding and catches any wrong equation: a bug shows up at 1e-3 or above.

float32 is a second, looser check, because the two sides round differently at each step and
the differences compound through time and through the layers:
* on the CPU, torch runs float32 LSTM through oneDNN's fused layer, and every other float32
  cell through its own per-step kernels; oneDNN and the native float32 LSTM gradients differ
  by up to ~1.5e-4 at T = 100, so even two torch paths do not meet a fixed float32 bound;
* the float32 unit roundoff is 6e-8; one step's error is a few tens of units, and the backward
  pass carries it through every later step and every layer above.
So the float32 tolerance grows linearly with the depth of the unrolled graph,
``seq_len * num_layers`` steps:

    FLOAT32_TOL = FLOAT32_BASE + FLOAT32_PER_STEP * seq_len * num_layers

with FLOAT32_BASE = 2e-5 and FLOAT32_PER_STEP = 2e-6: 2.2e-5 for one step, 2.2e-4 at T = 100
in one layer (above the oneDNN-vs-native gap and above the errors this harness measured, with
room to spare), and still far below the 1e-3-and-up divergence of a wrong equation.

Whole training runs (parity.training) are compared in float64 with the same measure, the
parameters after N updates and the N losses each relative to max(1, max |torch|), against
``TRAINING_TOL = 1e-9``. Not 1e-10, because rounding differences grow over the updates: the
two sides are compared only at the end, and each update starts from parameters that already
differ in the last place, so every forward and backward adds its own rounding to differences
carried from before (measured: up to 3e-14 after the 100 updates of the ci runs and 1.4e-13
after the 300 of the thorough ones, where one pass leaves ~1e-16). 1e-10 would leave three
orders of magnitude above that, 1e-9 leaves four, for longer runs and other learning rates;
a wrong update formula (a missing bias correction, eps in the wrong place, momentum started
at zero instead of at g) is off by 1e-4 or more after a few steps. A run whose learning rate
makes it chaotic amplifies a last-bit difference without bound (parity.training says how to
tell): that is a case to fix, not a reason to loosen this.
"""

from __future__ import annotations

import numpy as np

FLOAT64_TOL = 1e-10
FLOAT32_BASE = 2e-5
FLOAT32_PER_STEP = 2e-6
TRAINING_TOL = 1e-9


def tolerance(dtype, seq_len: int, num_layers: int) -> float:
    """tol in ``|impl - ref| <= tol * max(1, max |ref|)`` for a case of this dtype and depth."""
    dt = np.dtype(dtype)
    if dt == np.float64:
        return FLOAT64_TOL
    if dt == np.float32:
        return FLOAT32_BASE + FLOAT32_PER_STEP * seq_len * num_layers
    raise TypeError(f"dtype must be float32 or float64, got {dt}")


def scale(ref: np.ndarray) -> float:
    """max(1, max |ref|): what tol is multiplied by."""
    if ref.size == 0:
        return 1.0
    return max(1.0, float(np.max(np.abs(ref))))


def describe(dtype, seq_len: int, num_layers: int) -> str:
    """The criterion of a case in words, for reports."""
    tol = tolerance(dtype, seq_len, num_layers)
    if np.dtype(dtype) == np.float64:
        how = "float64, the exact oracle"
    else:
        how = (f"float32: {FLOAT32_BASE:g} + {FLOAT32_PER_STEP:g} * T * layers, "
               f"T={seq_len}, layers={num_layers}")
    return f"|impl - torch| <= {tol:.3g} * max(1, max|torch|)  ({how})"

# Central differences (``parity.diff.numerical_gradient``) of a float64 function, step FD_EPS:
# their own error is ~eps^2 * f''' + roundoff / eps, about 1e-9 at eps = 1e-6, so a
# gradient is held to FD_TOL = 1e-6 * max(1, max |differences|) against them; a wrong
# gradient is off by 1e-3 or more. The student's check uses these, on a student's functions.
FD_EPS = 1e-6
FD_TOL = 1e-6

# The project's tests hold scratch's own gradients tighter, on their tiny cases: at step
# FD_TEST_EPS the truncation error is ~FD_TEST_EPS^2 * |L'''| / 6 (~1e-11) and the rounding
# error ~2^-52 * |L| / FD_TEST_EPS (~1e-10; the largest seen is 3e-10), and FD_TEST_TOL leaves
# a margin of a hundred over both, where a wrong term of the chain rule is off by 1e-3 or more.
FD_TEST_EPS = 1e-5
FD_TEST_TOL = 1e-7
