"""One comparison: a case run through the implementation under test and through torch.

Checked, each against the tolerance of parity.tolerances:
  output, h_n (and c_n), the gradients of the input, of h0 (and c0), of every parameter by
  name, and every parameter's gradient again after a second forward and backward without
  zero_grad, named "grad[...] after 2 backward()" (it must be twice the first: gradients
  add up, as torch's .grad does).
Also checked: the implementation has the same parameter names as torch, returns a gradient
for hx exactly when hx was given, and every shape is torch's.

A failure report names each tensor that diverged, its largest absolute and relative errors
and where they are, the configuration in words, and the command that reruns that very case.
"""

from __future__ import annotations

import shlex
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from parity import tolerances
from parity.case import Case, make_data
from parity.diff import Error, array_problem, measure
from parity.impl import build_impl, run_impl
from parity.reference import Outcome, torch_outcome

if TYPE_CHECKING:
    from parity.units import UnitCase

# The quantities of the summary table, in order.
QUANTITIES = ("output", "h_n", "c_n", "grad_input", "grad_h0", "grad_c0", "grad_weight",
              "grad_bias", "grad_twice")


@dataclass
class TensorCheck:
    """How one tensor of the implementation compares with torch's: ``measured`` by
    parity.diff's measure, or a ``problem`` (a shape, a missing tensor, NaN) where there is
    no number to compare."""

    name: str  # e.g. "grad[weight_hh_l0]"
    quantity: str  # one of QUANTITIES
    tol: float
    measured: Error | None = None
    problem: str | None = None

    @property
    def error(self) -> float:
        """max |impl - ref| / max(1, max |ref|): what is held against tol."""
        return 0.0 if self.measured is None else self.measured.error

    @property
    def relative(self) -> tuple[float, list[int]]:
        """The largest |impl - ref| / |ref| and its index (inf where torch has an exact zero
        and the implementation does not)."""
        if self.measured is None:
            return 0.0, []
        m = self.measured
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(m.abs == 0, 0.0, m.abs / np.abs(m.expected))
        at = np.unravel_index(int(np.argmax(rel)), rel.shape)
        return float(rel[at]), [int(i) for i in at]

    @property
    def passed(self) -> bool:
        return self.problem is None and self.error <= self.tol

    def describe(self) -> str:
        if self.problem is not None or self.measured is None:
            return f"{self.name}: {self.problem or 'nothing to compare'}"
        m, (rel, rel_index) = self.measured, self.relative
        return (
            f"{self.name}: largest absolute error {m.largest:.3e} at index {list(m.index)} "
            f"(impl {m.actual[m.index]:.10g}, torch {m.expected[m.index]:.10g}); largest "
            f"relative error {rel:.3e} at index {rel_index}; error / max(1, max|torch|) = "
            f"{self.error:.3e} against tolerance {self.tol:.3g}"
        )


@dataclass
class CaseResult:
    """One case run through the implementation and torch: a layer case (parity.case.Case) or
    a function group's (parity.units.UnitCase, which is one step deep)."""

    case: Case | UnitCase
    impl: str  # how the implementation was named (--impl)
    checks: list[TensorCheck] = field(default_factory=list)
    crash: str | None = None  # the implementation raised: where and what
    story: list[str] = field(default_factory=list)  # Hypothesis's labelled draws, if any
    non_finite_reference: bool = False  # torch overflowed: not a verdict either way

    @property
    def failures(self) -> list[TensorCheck]:
        """The tensors that differ; a gradient's second-backward check is left out when the
        gradient itself already differs (it says nothing more)."""
        failed = [c for c in self.checks if not c.passed]
        firsts = {c.name for c in failed if c.quantity != "grad_twice"}
        return [c for c in failed
                if c.quantity != "grad_twice" or c.name.split(" after")[0] not in firsts]

    @property
    def passed(self) -> bool:
        """Nothing differs, nothing raised, and something was compared (or torch overflowed)."""
        return self.crash is None and not self.failures and bool(
            self.checks or self.non_finite_reference)

    def reproduce_command(self) -> str:
        impl = "" if self.impl == "scratch" else f" --impl {shlex.quote(self.impl)}"
        return f"python -m parity{impl} --reproduce {shlex.quote(self.case.to_json())}"

    def report(self, limit: int = 8) -> str:
        """A failure report: what diverged, by how much and where, the case, the command."""
        group = getattr(self.case, "group", None)
        lines = [] if group is None else [f"group: {group}"]
        if self.crash is not None:
            lines.append(f"the implementation raised an error: {self.crash}")
        failures = self.failures
        if failures:
            names = [c.name for c in failures]
            more = f" ... ({len(names)} in all)" if len(names) > 12 else ""
            lines.append(f"diverged from torch: {', '.join(names[:12])}{more}")
            for check in failures[:limit]:
                lines.append("  " + check.describe())
            if len(failures) > limit:
                lines.append(f"  ... and {len(failures) - limit} more")
        if not self.checks and self.crash is None and not self.non_finite_reference:
            lines.append("nothing was compared")
        lines.append("criterion: " + tolerances.describe(
            self.case.dtype, self.case.seq_len, self.case.num_layers))
        lines.append(f"case: {self.case.describe()}")
        if self.story:
            lines.append("as Hypothesis drew it:")
            lines += ["  " + line for line in self.story]
        return "\n".join(lines + [f"implementation: {self.impl}",
                                  f"reproduce: {self.reproduce_command()}"])


class ParityFailure(AssertionError):
    """An implementation computed something else than torch; str() is the full report."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.report())
        self.result = result


# -- comparing one tensor ---------------------------------------------------------------------
def compare_tensor(name: str, quantity: str, impl, ref: np.ndarray, tol: float) -> TensorCheck:
    """parity.diff's array_problem (NaN where torch has NaN, the same infinity where it has
    one), then its measure."""
    check = TensorCheck(name, quantity, tol, problem=array_problem(ref, impl, reference="torch"))
    if check.problem is None and ref.size:
        check.measured = measure(ref, impl)
    return check


def _param_quantity(name: str) -> str:
    return "grad_bias" if name.startswith("bias") else "grad_weight"


def compare_outcomes(case: Case, impl: Outcome, grads_twice, ref: Outcome) -> list[TensorCheck]:
    tol = tolerances.tolerance(case.dtype, case.seq_len, case.num_layers)
    checks = []
    for name in Outcome._fields[:-1]:  # output, h_n, c_n, grad_input, grad_h0, grad_c0
        mine, want = getattr(impl, name), getattr(ref, name)
        if want is not None:
            checks.append(compare_tensor(name, name, mine, want, tol))
        elif mine is not None:  # a gradient of hx (run_impl gives c_n only for the LSTM)
            checks.append(TensorCheck(name, name, tol, problem="returned, but forward() was "
                                                             "given no hx: it must be None"))
    return checks + param_checks(impl.grads, grads_twice, ref.grads, tol)


def param_checks(grads: dict, twice: dict, ref_grads: dict, tol: float) -> list[TensorCheck]:
    """The parameters' names, each gradient, then each again after a second forward and
    backward without zero_grad (twice the first: gradients add up, as torch's .grad does)."""
    checks = []
    if sorted(grads) != sorted(ref_grads):
        checks.append(TensorCheck("parameter names", "grad_weight", tol, problem=(
            f"the implementation has gradients {list(grads)}, torch has parameters "
            f"{list(ref_grads)}")))
    checks += [compare_tensor(f"grad[{name}]", _param_quantity(name), grads[name], ref, tol)
               for name, ref in ref_grads.items() if name in grads]
    return checks + [compare_tensor(f"grad[{name}] after 2 backward()", "grad_twice",
                                    twice[name], 2 * ref, tol)
                     for name, ref in ref_grads.items() if name in twice]


def _finite(outcome: Outcome) -> bool:
    arrays = [*outcome[:-1], *outcome.grads.values()]
    return all(np.all(np.isfinite(a)) for a in arrays if a is not None)


def run_case(case: Case, impl: ModuleType, impl_name: str = "scratch") -> CaseResult:
    """Run one case through the implementation and torch and compare everything."""
    result = CaseResult(case, impl_name)
    data = make_data(case)
    ref = torch_outcome(case, data)
    if not _finite(ref):
        result.non_finite_reference = True
        return result
    stage = ["building the module"]
    try:
        module = build_impl(case, data, impl)
        mine = run_impl(case, data, module, stage)
    except Exception as error:  # the implementation's own failure is a finding, not a crash
        result.crash = crash_words(error, stage[-1])
        return result
    result.checks = compare_outcomes(case, mine.first, mine.grads_twice, ref)
    return result


def crash_words(error: Exception, stage: str) -> str:
    """What the implementation raised, during which stage, and where."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return (f"{type(error).__name__}: {error} (during {stage}, at {frame.filename}:"
            f"{frame.lineno})")


def check_case(case: Case, impl: ModuleType, impl_name: str = "scratch") -> CaseResult:
    """run_case, raising ParityFailure (whose message is the report) when anything differs."""
    result = run_case(case, impl, impl_name)
    if not result.passed:
        raise ParityFailure(result)
    return result
