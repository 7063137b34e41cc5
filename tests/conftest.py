
"""Test-wide settings: one thread per library, and derandomized Hypothesis.

NumPy (OpenBLAS) and torch alternate in nearly every test; with several threads each they
fight over the cores and run many times slower (see the performance notes in the README).
The Makefile sets the thread variables too; setting them here covers a bare ``pytest``,
provided NumPy has not been imported yet.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# CI must not flake: a fixed seed (derandomize) and no example database. Open-ended
# exploration belongs to `make parity` profiles.
settings.register_profile(
    "tests",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("tests")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the NumPy-only tests still run
    pass


@pytest.fixture()
def leased(monkeypatch) -> list[int]:
    """The uids leased to children while the test runs (grading as root)."""
    from parity.grading import session

    uids: list[int] = []
    original = session.UidLease.__enter__

    def enter(self):
        uid = original(self)
        uids.append(uid)
        return uid

    monkeypatch.setattr(session.UidLease, "__enter__", enter)
    return uids


@pytest.fixture(autouse=True)
def _course_seed_zero(monkeypatch):
    """Grading draws a fresh secret course seed per run where the rubric sets none; tests
    that grade draw 0 instead, so that every run meets the same cases (CI must not flake).
    A test of the drawing itself restores ``rubric.fresh_seed``. (Only where the grader is
    loaded already: the other tests do not import it.)"""
    import sys

    module = sys.modules.get("parity.grading.rubric")
    if module is not None:
        monkeypatch.setattr(module, "fresh_seed", lambda: 0)
