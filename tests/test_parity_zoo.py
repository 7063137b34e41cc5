"""Meta-tests: the harness flags every wrong implementation of the zoo and names what diverged.

Each member is materialized as a student's copy would be (a directory holding a scratch/
package), loaded through --impl's loader, and run through the pinned cases, which every
profile (ci included) runs first: what they catch, ``make parity --impl`` catches. The modes a
member should not affect must still pass, so that each member is the one bug it claims.
A few members are also run through Hypothesis alone, to check that the exploration finds
and reports them without the pinned cases' help.
"""

import ast
import contextlib
import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from parity import cli, zoo
from parity.compare import run_case
from parity.impl import load_impl
from parity.pinned import pinned_cases
from parity.runner import Stats, run_mode
from parity.spec import ALL_MODES
from parity.strategies import PROFILES

REPO = Path(__file__).resolve().parents[1]


def test_the_zoo_has_at_least_fifteen_distinct_members():
    names = [m.name for m in zoo.MUTANTS]
    assert len(names) >= 15 and len(set(names)) == len(names)
    for mutant in zoo.MUTANTS:
        assert mutant.description and mutant.breaks and mutant.patches and mutant.diverges
        assert set(mutant.modes) <= set(ALL_MODES)


@pytest.mark.parametrize("mutant", zoo.MUTANTS, ids=lambda m: m.name)
def test_every_patch_still_applies(mutant):
    """Fails loudly, naming member, file and text, when scratch/ has moved under a patch."""
    texts = zoo.patched_sources(mutant)
    for file, text in texts.items():
        assert text != (zoo.scratch_source_dir() / file).read_text()


@pytest.mark.parametrize("mutant", zoo.MUTANTS, ids=lambda m: m.name)
def test_the_harness_flags_every_member_and_names_the_tensor(mutant, tmp_path):
    impl_dir = zoo.materialize(mutant.name, tmp_path)
    assert (impl_dir / "scratch" / "__init__.py").is_file()
    impl = load_impl(str(impl_dir))
    for mode in ALL_MODES:
        failures = []
        for _, case in pinned_cases(mode):
            result = run_case(case, impl, str(impl_dir))
            if not result.passed:
                failures.append(result)
        if mode not in mutant.modes:
            assert not failures, f"{mutant.name} should not change {mode}:\n" + \
                failures[0].report()
            continue
        assert failures, f"{mutant.name} was not caught for {mode}"
        first = failures[0]
        assert first.crash is None, first.report()
        names = [c.name for c in first.failures]
        assert any(n.startswith(prefix) for n in names for prefix in mutant.diverges), names
        report = first.report()
        assert f"diverged from torch: {names[0]}" in report
        assert f"--impl {impl_dir}" in report and "--reproduce" in report


@pytest.mark.parametrize("name, mode", [("gru_textbook", "GRU"),
                                        ("grads_overwritten", "LSTM"),
                                        ("reverse_starts_at_T", "GRU")])
def test_hypothesis_alone_finds_and_shrinks(name, mode, tmp_path):
    impl = load_impl(str(zoo.materialize(name, tmp_path)))
    with contextlib.redirect_stdout(io.StringIO()):
        outcome = run_mode(mode, "cpu", PROFILES["quick"], impl, name, Stats(), pinned=False)
    assert outcome.failure is not None and outcome.found_by.startswith("Hypothesis")
    report = outcome.failure.report()
    assert "Draw 1 (input_size)" in report and "diverged from torch" in report


def test_a_patch_that_no_longer_matches_says_so(tmp_path):
    source = tmp_path / "scratch"
    source.mkdir()
    (source / "activations.py").write_text("def relu_grad(r):\n    return r > 0\n")
    with pytest.raises(zoo.PatchError, match=r"'relu_grad_at_zero' no longer applies: "
                                             r"scratch/activations.py"):
        zoo.materialize("relu_grad_at_zero", tmp_path / "out", source=source)
    assert not (tmp_path / "out").exists()  # nothing written when a patch fails


def test_cli_zoo_then_impl_ends_red_naming_the_tensor(tmp_path, capsys):
    assert cli.zoo_main([str(tmp_path), "--names", "weight_hr_grad_missing"]) == 0
    impl_dir = tmp_path / "weight_hr_grad_missing"
    assert cli.main(["--impl", str(impl_dir), "--profile", "quick", "--modes", "lstm",
                     "--groups", "none"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: LSTM on cpu" in out and "grad[weight_hr_l0]" in out
    assert cli.zoo_main([str(tmp_path), "--names", "no_such_member"]) == 2


def test_python_m_parity_in_a_fresh_process(tmp_path):
    """The entry point as an instructor runs it: exit status 1 and the tensor named."""
    impl_dir = zoo.materialize("lstm_gate_order_ifog", tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "parity", "--impl", str(impl_dir), "--profile", "quick",
         "--modes", "lstm,gru", "--groups", "none"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "diverged from torch: output" in run.stdout
    assert re.search(r"^GRU\s+cpu\s+\d+\s+\d+\s+[\d.]+\s+pass$", run.stdout, re.M)
    assert re.search(r"^LSTM\s+cpu\s+\d+\s+\d+\s+[\d.]+\s+FAIL \(diverged: output",
                     run.stdout, re.M)


# -- the zoo survives edits of scratch/ -------------------------------------------------------
@pytest.fixture(scope="module")
def reformatted_scratch(tmp_path_factory):
    """A copy of scratch/ with every comment stripped and every module reformatted, as
    ast.unparse writes it: the text and line layout differ everywhere, the code does not."""
    source = zoo.scratch_source_dir()
    package = tmp_path_factory.mktemp("reformatted") / "scratch"
    for path in source.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        target = package / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(ast.unparse(ast.parse(path.read_text())) + "\n")
    return package


def test_the_reformatted_copy_has_no_comments_and_still_passes(reformatted_scratch, tmp_path):
    for path in reformatted_scratch.rglob("*.py"):
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        assert not any(t.type == tokenize.COMMENT for t in tokens), path
    original = (zoo.scratch_source_dir() / "functional/lstm_cell.py").read_text()
    assert (reformatted_scratch / "functional/lstm_cell.py").read_text() != original
    impl_dir = tmp_path / "plain"
    shutil.copytree(reformatted_scratch, impl_dir / "scratch")
    impl = load_impl(str(impl_dir))
    for mode in ALL_MODES:
        for _, case in pinned_cases(mode):
            result = run_case(case, impl, str(impl_dir))
            assert result.passed, result.report()


@pytest.mark.parametrize("mutant", zoo.MUTANTS, ids=lambda m: m.name)
def test_every_member_applies_to_reformatted_code_and_is_caught(mutant, reformatted_scratch,
                                                                tmp_path):
    impl_dir = zoo.materialize(mutant.name, tmp_path, source=reformatted_scratch)
    impl = load_impl(str(impl_dir))
    for mode in mutant.modes:
        failures = [result for _, case in pinned_cases(mode)
                    if not (result := run_case(case, impl, str(impl_dir))).passed]
        assert failures, f"{mutant.name} (reformatted) was not caught for {mode}"
        assert failures[0].crash is None, failures[0].report()
        names = [c.name for c in failures[0].failures]
        assert any(n.startswith(p) for n in names for p in mutant.diverges), names
