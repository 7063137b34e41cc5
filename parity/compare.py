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

import numpy as np

from parity import tolerances
from parity.case import Case, make_data
from parity.diff import array_problem
from parity.impl import build_impl, run_impl
from parity.reference import Outcome, torch_outcome

# The quantities of the summary table, in order.
QUANTITIES = ("output", "h_n", "c_n", "grad_input", "grad_h0", "grad_c0", "grad_weight",
          "grad_bias", "grad_twice")


@dataclass
class TensorCheck:
    """How one tensor of the implementation compares with torch's."""

    name: str  # e.g. "grad[weight_hh_l0]"
    quantity: str  # one of QUANTITIES
    tol: float
    scale: float = 1.0  # max(1, max |ref|)
    max_abs: float = 0.0
    abs_index: tuple = ()
    impl_value: float = 0.0
    ref_value: float = 0.0
    max_rel: float = 0.0
    rel_index: tuple = ()
    problem: str | None = None  # a shape, a missing tensor, NaN: no number to compare

    @property
    def error(self) -> float:
        """max |impl - ref| / max(1, max |ref|): what is held against tol."""
        return self.max_abs / self.scale

    @property
    def passed(self) -> bool:
        return self.problem is None and self.error <= self.tol

    def describe(self) -> str:
        if self.problem is not None:
            return f"{self.name}: {self.problem}"
        return (
            f"{self.name}: largest absolute error {self.max_abs:.3e} at index "
            f"{list(self.abs_index)} (impl {self.impl_value:.10g}, torch {self.ref_value:.10g}); "
            f"largest relative error {self.max_rel:.3e} at index {list(self.rel_index)}; "
            f"error / max(1, max|torch|) = {self.error:.3e} against tolerance {self.tol:.3g}"
        )


@dataclass
class CaseResult:
    case: Case
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
        return self.crash is None and not self.failures

    def reproduce_command(self) -> str:
        impl = "" if self.impl == "scratch" else f" --impl {shlex.quote(self.impl)}"
        return f"python -m parity{impl} --reproduce {shlex.quote(self.case.to_json())}"

    def report(self, limit: int = 8) -> str:
        """A failure report: what diverged, by how much and where, the case, the command."""
        lines = []
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
        lines.append("criterion: " + tolerances.describe(
            self.case.dtype, self.case.seq_len, self.case.num_layers))
        return "\n".join(lines + report_tail(self))


class ParityFailure(AssertionError):
    """An implementation computed something else than torch; str() is the full report."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.report())
        self.result = result


# -- comparing one tensor ---------------------------------------------------------------------
def compare_tensor(name: str, quantity: str, impl, ref: np.ndarray, tol: float) -> TensorCheck:
    check = TensorCheck(name, quantity, tol)
    check.problem = array_problem(ref, impl)  # the grader's words for what is no number
    if check.problem is not None or ref.size == 0:
        return check
    a, b = impl.astype(np.float64), ref.astype(np.float64)
    diff = np.abs(a - b)
    abs_at = np.unravel_index(int(np.argmax(diff)), diff.shape)
    with np.errstate(divide="ignore", invalid="ignore"):  # |torch| == 0: inf, or 0 if equal
        rel = np.where(diff == 0, 0.0, diff / np.abs(b))
    rel_at = np.unravel_index(int(np.argmax(rel)), rel.shape)
    check.scale = tolerances.scale(b)
    check.max_abs = float(diff[abs_at])
    check.abs_index = tuple(int(i) for i in abs_at)
    check.impl_value, check.ref_value = float(a[abs_at]), float(b[abs_at])
    check.max_rel = float(rel[rel_at])
    check.rel_index = tuple(int(i) for i in rel_at)
    return check


def _param_quantity(name: str) -> str:
    return "grad_bias" if name.startswith("bias") else "grad_weight"


def compare_outcomes(case: Case, impl: Outcome, grads_twice, ref: Outcome) -> list[TensorCheck]:
    tol = tolerances.tolerance(case.dtype, case.seq_len, case.num_layers)
    checks = [
        compare_tensor("output", "output", impl.output, ref.output, tol),
        compare_tensor("h_n", "h_n", impl.h_n, ref.h_n, tol),
    ]
    if ref.c_n is not None:
        checks.append(compare_tensor("c_n", "c_n", impl.c_n, ref.c_n, tol))
    checks.append(compare_tensor("grad_input", "grad_input", impl.grad_input, ref.grad_input,
                                 tol))
    for name, impl_value, ref_value in (("grad_h0", impl.grad_h0, ref.grad_h0),
                                        ("grad_c0", impl.grad_c0, ref.grad_c0)):
        if ref_value is not None:
            checks.append(compare_tensor(name, name, impl_value, ref_value, tol))
        elif impl_value is not None:
            check = TensorCheck(name, name, tol)
            check.problem = "returned, but forward() was given no hx: it must be None"
            checks.append(check)

    names_impl, names_ref = list(impl.grads), list(ref.grads)
    if sorted(names_impl) != sorted(names_ref):
        check = TensorCheck("parameter names", "grad_weight", tol)
        check.problem = (f"the implementation has gradients {names_impl}, "
                         f"torch has parameters {names_ref}")
        checks.append(check)
    for name, ref_grad in ref.grads.items():
        if name in impl.grads:
            checks.append(compare_tensor(f"grad[{name}]", _param_quantity(name), impl.grads[name],
                                         ref_grad, tol))
    for name, ref_grad in ref.grads.items():
        if name in grads_twice:
            checks.append(compare_tensor(
                f"grad[{name}] after 2 backward()", "grad_twice",
                grads_twice[name], 2 * ref_grad, tol,
            ))
    return checks


def _finite(outcome: Outcome) -> bool:
    arrays = [outcome.output, outcome.h_n, outcome.c_n, outcome.grad_input, outcome.grad_h0,
              outcome.grad_c0, *outcome.grads.values()]
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
        frame = traceback.extract_tb(error.__traceback__)[-1]
        result.crash = (f"{type(error).__name__}: {error} (during {stage[-1]}, at "
                        f"{frame.filename}:{frame.lineno})")
        return result
    result.checks = compare_outcomes(case, mine.first, mine.grads_twice, ref)
    return result


def check_case(case: Case, impl: ModuleType, impl_name: str = "scratch") -> CaseResult:
    """run_case, raising ParityFailure (whose message is the report) when anything differs."""
    result = run_case(case, impl, impl_name)
    if not result.passed:
        raise ParityFailure(result)
    return result


def report_tail(failure) -> list[str]:
    """The last lines of a failure's report: the case, how Hypothesis drew it, the
    implementation and the command that reproduces it."""
    lines = [f"case: {failure.case.describe()}"]
    if failure.story:
        lines.append("as Hypothesis drew it:")
        lines += ["  " + line for line in failure.story]
    return lines + [f"implementation: {failure.impl}",
                    f"reproduce: {failure.reproduce_command()}"]
