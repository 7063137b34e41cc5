"""The function groups of the parity harness (parity.units): scratch passes each, a planted
mistake fails the group it belongs to by name, an implementation without a function has that
group skipped by name, and a failing case reruns from its JSON."""

import json
import re
import shutil
import sys

import pytest

import scratch
from parity import cli, units
from parity.strategies import PROFILES


def copy_with(tmp_path, relative: str, old: str, new: str):
    """A student's copy of scratch/ (tmp_path/scratch) with one text replaced."""
    shutil.copytree(scratch.__path__[0], tmp_path / "scratch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "scratch" / relative
    text = path.read_text()
    assert text.count(old) == 1, f"{relative} no longer holds {old!r} exactly once"
    path.write_text(text.replace(old, new))
    return tmp_path


@pytest.mark.parametrize("group", [g.name for g in units.GROUPS])
def test_scratch_passes_every_group(group):
    outcome = units.run_unit_group(units.GROUPS_BY_NAME[group], PROFILES["quick"], scratch,
                                   "scratch")
    assert outcome.failure is None, outcome.failure.report()
    assert outcome.pinned == len(units.GROUPS_BY_NAME[group].pinned) * 2
    assert outcome.explored == PROFILES["quick"].group_examples
    assert outcome.stats.cases[group] == outcome.pinned + outcome.explored
    assert outcome.stats.options[group, "float64"] > 0
    assert outcome.stats.options[group, "float32"] > 0


def test_a_case_compares_every_tensor():
    case = units.make_case("GRUCell", units.GROUPS_BY_NAME["GRUCell"].pinned[0], "float64", 0)
    result = units.run_unit_case(case, scratch)
    assert result.passed, result.report()
    names = [c.name for c in result.checks]
    assert names == ["h'", "grad_input", "grad_hx",
                     *[f"grad[{n}]{suffix}" for suffix in ("", " after 2 backward()")
                       for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]]
    case = units.make_case("lstm_cell_backward", {"input_size": 3, "hidden_size": 4,
                                                  "batch": 2, "bias": True, "proj_size": 2},
                           "float64", 0)
    result = units.run_unit_case(case, scratch)
    assert result.passed, result.report()
    assert [c.name for c in result.checks] == list(scratch.functional.LSTMCellGrads._fields)


# the mistakes the harness used to let through (cell functions), and one of each other kind
PLANTED = [
    ("functional/gru_cell.py", "    dW_ih = dx_proj.T @ x  # (3H, I)",
     "    dW_ih = 0 * W_ih  # (3H, I)", "gru_cell_backward,GRUCell",
     {"gru_cell_backward", "GRUCell"}),
    ("functional/gru_cell.py", "    db_hh = dgh.sum(axis=0) if has_bias",
     "    db_hh = dx_proj.sum(axis=0) if has_bias", "gru_cell_*", {"gru_cell_backward"}),
    ("functional/rnn_cell.py", "    x_proj = x @ W_ih.T  # (B, H)",
     "    x_proj = x @ W_ih  # (B, H)", "rnn_cell_forward", {"rnn_cell_forward"}),
    ("losses.py", "dz /= log_p.dtype.type(count)", "dz /= log_p.dtype.type(N)",
     "*Loss", {"CrossEntropyLoss"}),
    ("optim.py", "p *= 1 - self.lr * self.weight_decay", "p *= 1 - self.weight_decay",
     "Adam,AdamW", {"AdamW"}),
]


@pytest.mark.parametrize("relative, old, new, groups, failing", PLANTED,
                         ids=[sorted(p[4])[0] + "-" + p[1].strip()[:20] for p in PLANTED])
def test_a_planted_mistake_fails_its_group_by_name(tmp_path, capsys, relative, old, new,
                                                   groups, failing):
    copy = copy_with(tmp_path, relative, old, new)
    code = cli.main(["--impl", str(copy), "--profile", "quick", "--modes", "none",
                     "--groups", groups])
    out = capsys.readouterr().out
    assert code == 1, out
    assert set(re.findall(r"^FAIL: group (\S+), found by", out, re.M)) == failing, out
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("FAIL: ") and all(name in verdict for name in failing)

    # the report's reproduce command reruns that very case, and fails again
    reproduce = re.search(r"reproduce: python -m parity --impl \S+ --reproduce '(.*)'$", out,
                          re.M)
    assert reproduce is not None, out
    assert json.loads(reproduce.group(1))["group"] in failing
    assert cli.main(["--impl", str(copy), "--reproduce", reproduce.group(1)]) == 1
    again = capsys.readouterr().out
    assert again.startswith("FAIL\ngroup: " + json.loads(reproduce.group(1))["group"] + "\n")


def test_reproduce_a_failing_group_case_prints_the_report(tmp_path, capsys):
    copy = copy_with(tmp_path, "linear.py", "dy_2d.sum(axis=0)", "dy_2d.mean(axis=0)")
    case = units.make_case("Linear", {"in_features": 3, "out_features": 2, "bias": True,
                                      "lead": [4]}, "float64", 5)
    assert cli.main(["--impl", str(copy), "--reproduce", case.to_json()]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL\ngroup: Linear\n")
    # the second backward's grad[bias] is left out: the first already differs
    assert "diverged from torch: grad[bias]\n" in out
    assert cli.main(["--reproduce", case.to_json()]) == 0  # the project's scratch passes it
    assert capsys.readouterr().out.startswith("PASS: every tensor agrees with torch")
    assert cli.main(["--reproduce", json.dumps({"group": "Transformer"})]) == 2
    assert "unknown group 'Transformer'" in capsys.readouterr().err


def test_impl_without_some_functions_runs_the_rest_and_names_the_skipped(tmp_path, capsys,
                                                                         monkeypatch):
    (tmp_path / "partial_impl.py").write_text(
        "from scratch import GRU, LSTM, RNN, Linear, MSELoss\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = cli.main(["--impl", "partial_impl", "--profile", "quick", "--modes", "none"])
    out = capsys.readouterr().out
    assert code == 0, out
    skipped = out.split("\nskipped:\n")[1]
    for name, why in [("Embedding", "the module has no Embedding"),
                      ("RNNCell", "the module has no RNNCell"),
                      ("gru_cell_backward", "the module has no functional.gru_cell_forward"),
                      ("SGD", "the module has no SGD"),
                      ("clip_grad_norm_", "the module has no clip_grad_norm_")]:
        assert f"  - group {name}: {why}\n" in skipped
    ran = re.findall(r"^  (\S+) +ok ", out, re.M)
    assert ran == ["Linear", "MSELoss"]
    assert "training parity: it runs against the project's scratch only" in skipped
    sys.modules.pop("partial_impl", None)


def test_groups_and_kinds_none_select_nothing_but_training(capsys, monkeypatch):
    monkeypatch.setattr(cli, "run_training", lambda profile, name: ([], "training: not here"))
    assert cli.main(["--profile", "quick", "--modes", "none", "--groups", "training"]) == 0
    out = capsys.readouterr().out
    assert "training: not here" in out and "0 layer cases and 0 function cases" in out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--groups", "Transformer"])
    assert exit_info.value.code == 2
    assert "no group matches 'Transformer'" in capsys.readouterr().err
