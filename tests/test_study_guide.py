"""The study guide (docs/study/) stays true to the code it explains.

* Code anchors: a page ties a derived equation to the line of scratch/ that computes it by
  showing the line's expression and naming the tag at the end of that line's comment:

      `dc_prev = dc * f` — [`lstm_cell.py`](../../scratch/functional/lstm_cell.py) `{#lstm-dc-prev}`

  Every such reference, in both editions, must resolve to exactly one line of scratch/, in the
  file the link points at, and that line must still hold the expression shown (compared with
  all whitespace removed). A tag written any other way on a page is an error too, so that no
  reference escapes the check.
* Both editions have the same pages, the same references and the same figures.
* The tutorial page's code runs as shown, and prints the numbers the page says it prints.
* The figures regenerate from docs/study/figures.py.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "docs" / "study"
ZH = STUDY / "zh"
SCRATCH = REPO / "scratch"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

REFERENCE = re.compile(
    r"`(?P<expr>[^`]+)`\s*—\s*\[`?(?P<label>[^\]`]+)`?\]\((?P<link>[^)\s]+)\)\s*"
    r"`\{#(?P<tag>[a-z0-9-]+)\}`")
TAG = re.compile(r"\{#([a-z0-9-]+)\}")
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
OUTPUT_RTOL = 1e-4  # printed numbers against the page's, relative (stated on tutorial.md)


def load_figures():
    spec = importlib.util.spec_from_file_location("study_figures", STUDY / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.md"))}


def all_pages() -> dict[Path, str]:
    """{path: text} of every page of both editions."""
    found = {p: p.read_text(encoding="utf-8") for p in sorted(STUDY.glob("*.md"))}
    found.update({p: p.read_text(encoding="utf-8") for p in sorted(ZH.glob("*.md"))})
    return found


def scratch_sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(SCRATCH.rglob("*.py"))}


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


# -- the anchor checker -------------------------------------------------------------------------
def tag_index(sources: dict[Path, str]) -> dict[str, list[tuple[Path, int, str]]]:
    """tag -> every (file, line number, line) whose comment ends with {#tag}."""
    index: dict[str, list] = {}
    for path, text in sources.items():
        for number, line in enumerate(text.splitlines(), 1):
            if "#" not in line:
                continue
            for tag in TAG.findall(line.split("#", 1)[1]):
                index.setdefault(tag, []).append((path, number, line))
    return index


def anchor_problems(page_texts: dict[Path, str], sources: dict[Path, str]) -> list[str]:
    """Every way a page's code references fail to hold, in words (empty when all hold)."""
    index = tag_index(sources)
    problems = []
    for page, text in page_texts.items():
        name = page.relative_to(REPO) if page.is_relative_to(REPO) else page
        references = list(REFERENCE.finditer(text))
        if len(TAG.findall(text)) != len(references):
            bare = set(TAG.findall(text)) - {m["tag"] for m in references}
            problems.append(f"{name}: a tag not written as `expression` — [file](link) "
                            f"`{{#tag}}`: {sorted(bare) or 'a tag written both ways'}")
        for ref in references:
            tag, expr = ref["tag"], ref["expr"]
            found = index.get(tag, [])
            if len(found) != 1:
                where = ", ".join(f"{p.name}:{n}" for p, n, _ in found)
                problems.append(f"{name}: {{#{tag}}} is on {len(found)} lines of scratch/, "
                                f"not 1 {where}".rstrip())
                continue
            path, number, line = found[0]
            target = (page.parent / ref["link"]).resolve()
            if target != path.resolve():
                problems.append(f"{name}: {{#{tag}}} links to {ref['link']}, but the tag is "
                                f"in {path.relative_to(SCRATCH.parent)}")
            code = line.split("#", 1)[0]
            if squeeze(expr) not in squeeze(code):
                problems.append(f"{name}: {{#{tag}}}: the page shows `{expr}`, but "
                                f"{path.name}:{number} reads `{code.strip()}`")
    return problems


def references(text: str) -> list[tuple[str, str]]:
    return [(m["tag"], squeeze(m["expr"])) for m in REFERENCE.finditer(text)]


def test_every_code_anchor_in_both_editions_resolves_and_still_holds_its_expression():
    found = all_pages()
    assert anchor_problems(found, scratch_sources()) == []
    # the cell and BPTT pages do tie their equations to code, in both editions
    for name in ("rnn.md", "lstm.md", "gru.md", "bptt.md"):
        assert len(references(found[STUDY / name])) >= 3, name
        assert len(references(found[ZH / name])) >= 3, name


def test_the_anchor_check_fails_on_a_broken_copy():
    page_texts = all_pages()
    sources = scratch_sources()
    page = STUDY / "lstm.md"
    ref = next(REFERENCE.finditer(page_texts[page]))
    tag, expr = ref["tag"], ref["expr"]
    (path, number, line), = tag_index(sources)[tag]
    lines = sources[path].splitlines()

    def with_line(new_line: str) -> dict[Path, str]:
        changed = lines.copy()
        changed[number - 1] = new_line
        return {**sources, path: "\n".join(changed)}

    code, comment = line.split("#", 1)
    # the expression drifted: the line computes something else now
    drifted = with_line(code.replace("=", "= 2.0 *", 1) + "#" + comment)
    assert any("the page shows" in p and tag in p
               for p in anchor_problems({page: page_texts[page]}, drifted))
    # the tag is gone
    untagged = with_line(line.replace(f"{{#{tag}}}", ""))
    assert any(f"{{#{tag}}} is on 0 lines" in p
               for p in anchor_problems({page: page_texts[page]}, untagged))
    # the tag is on two lines
    twice = {**sources, SCRATCH / "extra.py": f"y = 1  # {{#{tag}}}\n"}
    assert any(f"{{#{tag}}} is on 2 lines" in p
               for p in anchor_problems({page: page_texts[page]}, twice))
    # the page changed the expression, or links to the wrong file, or writes a bare tag
    text, shown = page_texts[page], ref.group(0)
    for broken in (text.replace(shown, shown.replace(f"`{expr}`", f"`{expr} + 1`"), 1),
                   text.replace(shown, shown.replace(ref["link"], "../../scratch/sequence.py"), 1),
                   text + f"\nsee {{#{tag}}}\n"):
        assert broken != text
        assert anchor_problems({page: broken}, sources) != []
    assert anchor_problems({page: page_texts[page]}, sources) == []


# -- both editions ------------------------------------------------------------------------------
def tagged_blocks(text: str) -> list[tuple[str, str]]:
    """The fenced blocks that name a language (python, text): code that runs, and its output."""
    return [(lang, body) for lang, body in FENCE.findall(text) if lang]


def test_every_english_page_has_a_chinese_counterpart_and_vice_versa():
    english, chinese = pages(STUDY), pages(ZH)
    assert set(english) == set(chinese)
    assert {"README.md", "rnn.md", "lstm.md", "gru.md", "bptt.md", "torch-conventions.md",
            "tutorial.md", "exercises.md"} <= set(english)
    for name, text in chinese.items():
        head = "\n".join(text.splitlines()[:5])
        assert f"](../{name})" in head, f"zh/{name} does not link its English original at the top"
        assert f"](zh/{name})" in "\n".join(english[name].splitlines()[:5]), name
        # the same code references, and the same figures
        assert sorted(references(text)) == sorted(references(english[name])), name
        figures_en = re.findall(r"\]\(figures/([\w.-]+\.png)\)", english[name])
        figures_zh = re.findall(r"\]\(\.\./figures/([\w.-]+\.png)\)", text)
        assert figures_en == figures_zh, name
        # code that runs (the tutorial, the exercises, BPTT's numbers) is the same code,
        # printing the same; untagged blocks (pseudo-code) may carry translated comments
        assert tagged_blocks(text) == tagged_blocks(english[name]), name
        assert len(FENCE.findall(text)) == len(FENCE.findall(english[name])), name


def test_the_chinese_edition_has_a_glossary():
    text = (ZH / "README.md").read_text(encoding="utf-8")
    for english, chinese in (("hidden state", "隐藏状态"),
                             ("backpropagation through time", "随时间反向传播"),
                             ("forget gate", "遗忘门")):
        assert re.search(rf"\|\s*{english}\s*\|\s*{chinese}\s*\|", text, re.I), english
    # the terms of d2l-zh (动手学深度学习), which most Chinese readers learnt first
    for english, d2l in (("hidden state", "隐状态"), ("cell state", "记忆元"),
                         ("candidate cell", "候选记忆元"),
                         ("backpropagation through time", "通过时间反向传播")):
        row = next((line for line in text.splitlines()
                    if re.match(rf"\|\s*{english}\s*\|", line, re.I)), "")
        assert d2l in row, english
    # one term for the reverse direction, which cannot be read as backpropagation (反向传播)
    for page in ZH.glob("*.md"):
        assert "反向方向" not in page.read_text(encoding="utf-8"), page.name
    assert re.search(r"\|\s*bidirectional, reverse direction\s*\|[^|\n]*逆序方向", text)


def test_links_between_pages_resolve():
    for page, text in all_pages().items():
        for link in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
            if link.startswith("http"):
                continue
            assert (page.parent / link).exists(), f"{page.relative_to(REPO)}: {link}"


def test_the_readme_first_screen_links_the_study_guide():
    first_screen = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:25])
    assert "](docs/study/)" in first_screen or "](docs/study/README.md)" in first_screen


# -- the tutorial runs as shown -----------------------------------------------------------------
def blocks_with_output(text: str) -> list[tuple[str, str]]:
    """(python block, the text block after it or "") for every python block of a page."""
    fences = FENCE.findall(text)
    pairs = []
    for k, (lang, body) in enumerate(fences):
        if lang == "python":
            after = fences[k + 1] if k + 1 < len(fences) else ("", "")
            pairs.append((body, after[1] if after[0] == "text" else ""))
    return pairs


def output_mismatch(printed: str, shown: str) -> str | None:
    """Why the printed text is not what the page shows, or None: the words equal, every
    number within OUTPUT_RTOL."""
    if NUMBER.sub("#", printed).split() != NUMBER.sub("#", shown).split():
        return f"printed\n{printed}\nbut the page shows\n{shown}"
    for got, want in zip(NUMBER.findall(printed), NUMBER.findall(shown)):
        if not math.isclose(float(got), float(want), rel_tol=OUTPUT_RTOL, abs_tol=1e-12):
            return f"printed {got} where the page shows {want}"
    return None


def run_with_outputs(page: Path) -> tuple[dict, list[tuple[str, str]]]:
    """Run a page's python blocks in order in one namespace: (namespace, [(printed, shown)])."""
    import contextlib
    import io

    namespace: dict = {"__name__": "__study_page__"}
    outputs = []
    for code, shown in blocks_with_output(page.read_text(encoding="utf-8")):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, page.name, "exec"), namespace)
        outputs.append((printed.getvalue(), shown))
    return namespace, outputs


@pytest.fixture(scope="module")
def tutorial_run():
    return run_with_outputs(STUDY / "tutorial.md")


@pytest.fixture(scope="module")
def bptt_run():
    return run_with_outputs(STUDY / "bptt.md")


def test_the_tutorial_runs_as_shown_and_prints_what_the_page_says(tutorial_run):
    namespace, outputs = tutorial_run
    assert len(outputs) >= 5
    assert sum(bool(shown.strip()) for _, shown in outputs) >= 4
    for printed, shown in outputs:
        assert output_mismatch(printed, shown) is None, output_mismatch(printed, shown)
    # what the page claims, checked directly too
    losses, losses_t = namespace["losses"], namespace["losses_torch"]
    assert len(losses) == len(losses_t) == 300
    assert max(abs(a - b) for a, b in zip(losses, losses_t)) < 1e-12
    assert losses[-1] < losses[0] / 4


def test_the_tutorial_check_fails_on_a_changed_number(tutorial_run):
    _, outputs = tutorial_run
    printed, shown = next((p, s) for p, s in outputs if "update 300" in s)
    assert output_mismatch(printed, shown) is None
    assert output_mismatch(printed, shown.replace("0.037778", "0.037978")) is not None
    assert output_mismatch(printed, shown.replace("True", "False")) is not None
    assert output_mismatch(printed + "one more line\n", shown) is not None


def test_the_tutorial_model_is_the_tutorials(tutorial_run):
    namespace, _ = tutorial_run
    net, model = namespace["net"], namespace["model"]
    assert (net.rnn.input_size, net.rnn.hidden_size, net.fc.out_features) == (10, 20, 1)
    assert (model.rnn.input_size, model.rnn.hidden_size, model.fc.out_features) == (10, 20, 1)


# -- every number the gradient-flow pages state is one their code prints ----------------------
DECIMAL = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d+|\d+(?:\.\d+)?[eE][-+]?\d+)(?![\w.])")


def unprinted_numbers(text: str) -> list[str]:
    """The decimal numbers of a page's prose (tables and formulas included, code spans and
    blocks left out) that neither its printed output (its ```text blocks) nor its code holds."""
    held = set()
    for lang, body in FENCE.findall(text):
        if lang in ("text", "python"):
            held |= set(DECIMAL.findall(body))
    prose = re.sub(r"`[^`]*`", "", FENCE.sub("", text))
    return [n for n in DECIMAL.findall(prose) if n not in held]


def test_the_bptt_page_runs_as_shown_and_prints_what_it_says(bptt_run):
    namespace, outputs = bptt_run
    assert len(outputs) >= 4 and all(shown.strip() for _, shown in outputs)
    for printed, shown in outputs:
        assert output_mismatch(printed, shown) is None, output_mismatch(printed, shown)
    # the claims the prose draws from these numbers, checked directly too
    flow = namespace["flow"]  # row k - 1: k steps back; columns ||dL/dh||, ||dL/dc||, cell path
    assert flow.shape == (100, 3)
    assert flow[-1, 1] > 100 * flow[-1, 2]  # the cell path alone carries a small part
    assert flow[-1, 1] > 2 * flow[49, 1]  # the rise towards t = 0 ...
    warm = namespace["warm"]
    assert warm[-1, 0] < warm[49, 0] * 1.5 and warm[-1, 1] < warm[49, 1] * 1.5  # ... is gone


@pytest.mark.parametrize("name", ["bptt.md", "lstm.md"])
def test_every_number_the_gradient_pages_state_is_computed_by_their_code(name):
    for page in (STUDY / name, ZH / name):
        text = page.read_text(encoding="utf-8")
        assert unprinted_numbers(text) == [], f"{page.relative_to(REPO)} states numbers its " \
            f"code does not print: {unprinted_numbers(text)}"
        # the check fails on a number the code does not print
        assert unprinted_numbers(text + "\nthe radius is 0.63, the norm 2.1e-05\n") == \
            ["0.63", "2.1e-05"]


# -- the figures --------------------------------------------------------------------------------
def test_the_figures_regenerate_and_the_pages_show_them(tmp_path, tutorial_run, bptt_run):
    from PIL import Image

    figures = load_figures()
    namespace, _ = tutorial_run
    figures.CROSSED.clear()
    written = [figures.rnn_build(tmp_path), figures.lstm_build(tmp_path),
               figures.gru_build(tmp_path), figures.rnn_step(tmp_path),
               figures.lstm_step(tmp_path), figures.gru_step(tmp_path),
               figures.bptt_unrolled(tmp_path)]
    path, flow = figures.gradient_flow(tmp_path)
    written += [path, figures.forget_gate_paths(tmp_path, bptt_run[0]),
                figures.truncation_clipping(tmp_path)[0],
                figures.tutorial_loss(tmp_path, namespace)]
    assert sorted(p.name for p in written) == sorted(figures.FIGURES)
    assert figures.CROSSED == {}, f"labels or boxes under an arrow: {figures.CROSSED}"
    for name in figures.FIGURES:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert 3_000 < len(data) < 400_000, f"{name}: {len(data)} bytes"
        with Image.open(tmp_path / name) as image:
            assert min(image.info["dpi"]) >= 150, f"{name}: {image.info['dpi']} dpi"
    # the committed copies are the same set, at the same resolution, and every figure a page
    # shows exists
    assert sorted(p.name for p in (STUDY / "figures").glob("*.png")) == sorted(figures.FIGURES)
    for path in (STUDY / "figures").glob("*.png"):
        with Image.open(path) as image:
            assert min(image.info.get("dpi", (0, 0))) >= 150, path.name
    shown = set()
    for page, text in all_pages().items():
        for link in re.findall(r"\]\(((?:\.\./)?figures/[\w.-]+\.png)\)", text):
            assert (page.parent / link).is_file(), f"{page.name}: {link}"
            shown.add(Path(link).name)
    assert shown == set(figures.FIGURES)
    # the gradient-flow figure draws what the BPTT page prints
    medians = flow["medians"]
    assert f"{flow['radii'][2.0]:.2f}" == "1.24"
    assert f"{medians[('RNN_TANH', 4.0)][-1]:.1e}" in (STUDY / "bptt.md").read_text("utf-8")
    assert f"{medians[('LSTM', '1, forget bias +3')][-1]:.2f}" == \
        f"{bptt_run[0]['flow'][-1, 0]:.2f}"


def test_the_figures_layout_check_sees_an_arrow_through_a_label():
    figures = load_figures()
    label = (0.0, 0.0, 1.0, 1.0)
    assert figures.crosses(label, ((-1.0, 0.5), (2.0, 0.5)))  # straight through
    assert figures.crosses(label, ((0.5, -1.0), (0.5, 0.2)))  # ends inside
    assert not figures.crosses(label, ((-1.0, 1.5), (2.0, 1.5)))  # passes above
    assert not figures.crosses(label, ((1.2, -1.0), (3.0, 2.0)))  # passes beside
    # and a graph with an arrow through a box that it does not join is recorded
    import matplotlib.pyplot as plt

    figures.CROSSED.clear()
    fig, ax = plt.subplots(figsize=(3, 2))
    nodes = {k: (x, 0, k, "op", "$dv$" if k == "b" else None)
             for k, x in (("a", 0), ("b", 1), ("c", 2))}
    figures.draw_graph(ax, nodes, [("a", "c")], "crowded")
    plt.close(fig)
    assert "crowded" in figures.CROSSED
    figures.CROSSED.clear()


# -- the exercises and the traps name what exists -----------------------------------------------
ZOO_PARAGRAPH = re.compile(
    r"(?:Zoo members|Caught by|zoo 成员|由此捕获)\s*[:：](.*?)(?:\n\s*\n|\Z)", re.S)


def zoo_names_on(text: str) -> set[str]:
    """The zoo members a page names in its "Zoo members:" / "Caught by:" paragraphs."""
    names = set()
    for paragraph in ZOO_PARAGRAPH.findall(text):
        names |= {t for t in re.findall(r"`([^`]+)`", paragraph)
                  if re.fullmatch(r"[a-z][A-Za-z0-9]*_[A-Za-z0-9_]*", t)}
    return names


def test_the_exercises_and_the_traps_name_real_zoo_members_and_every_one():
    from parity.zoo.mutants import MUTANTS

    members = {m.name for m in MUTANTS}
    for folder in (STUDY, ZH):
        exercises = zoo_names_on((folder / "exercises.md").read_text(encoding="utf-8"))
        traps = zoo_names_on((folder / "torch-conventions.md").read_text(encoding="utf-8"))
        assert exercises <= members, f"{folder.name}: not in the zoo: {exercises - members}"
        assert traps <= members, f"{folder.name}: not in the zoo: {traps - members}"
        assert exercises == members, f"{folder.name}: exercises miss {members - exercises}"
        assert len(traps) >= 8


def test_the_tests_the_traps_page_names_exist():
    for page in (STUDY / "torch-conventions.md", ZH / "torch-conventions.md"):
        named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", page.read_text(encoding="utf-8"))
        assert len(named) >= 4, page
        for path, function in named:
            source = (REPO / path).read_text(encoding="utf-8")
            assert not function or f"def {function}(" in source, f"{path}::{function}"


def test_the_traps_page_quotes_the_tolerances_in_force():
    from parity import tolerances as t

    quoted = [f"{t.FLOAT64_TOL:g}", f"{t.FLOAT32_BASE:g} + {t.FLOAT32_PER_STEP:g}",
              f"{t.TRAINING_TOL:g}"]
    for page in (STUDY / "torch-conventions.md", ZH / "torch-conventions.md"):
        text = page.read_text(encoding="utf-8")
        assert all(q in text for q in quoted), (page, quoted)


def test_the_exercises_finite_difference_checks_run_and_pass():
    figures = load_figures()
    namespace, printed = figures.run_page(STUDY / "exercises.md")
    errors = [float(e) for e in re.findall(r"relative error (\S+)", printed)]
    assert len(errors) >= 35 and max(errors) < 1e-6, printed
    differences = [float(e) for e in re.findall(r"largest difference (\S+)", printed)]
    assert len(differences) >= 15 and max(differences) < 1e-6, printed
    assert "WRONG" not in printed, printed
    # and the check tells a wrong gradient from a right one: tanh's, right and 1 % off
    import contextlib
    import io

    import numpy as np

    v, dy = np.linspace(-2.0, 2.0, 12).reshape(3, 4), np.linspace(1.0, -1.0, 12).reshape(3, 4)
    right = dy * (1.0 - np.tanh(v) ** 2)
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        namespace["check"]("right", right, lambda: np.tanh(v), v, dy)
        namespace["check"]("wrong", right * 1.01, lambda: np.tanh(v), v, dy)
    right_error, wrong_error = map(float, re.findall(r"relative error (\S+)", said.getvalue()))
    assert right_error < 1e-8 < 1e-3 < wrong_error
    assert said.getvalue().count("WRONG") == 1 and "wrong: relative error" in said.getvalue()
    # and the known-answer check tells a wrong output from a right one, and a wrong shape
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        namespace["expect"]("same", [[0.5, -0.25]], [[0.5, -0.25]])
        namespace["expect"]("off", [[0.5, -0.25]], [[0.5, -0.2501]])
        namespace["expect"]("shape", [0.5, -0.25], [[0.5, -0.25]])
    lines = said.getvalue().splitlines()
    assert ["WRONG" in line for line in lines] == [False, True, True], lines
