"""The study guide's figures, every one drawn by this script (``make figures``).

    python docs/study/figures.py [--out docs/study/figures]

Writes, into the output folder:

* ``rnn_build.png``, ``lstm_build.png``, ``gru_build.png``: each cell built up in stages, what
  each part is for before its equations;
* ``rnn_step.png``, ``lstm_step.png``, ``gru_step.png``: one time step's computational graph,
  forward in black, the gradient each node receives in red;
* ``bptt_unrolled.png``: the unrolled graph of four steps, with dL/dh flowing from t+1 to t;
* ``gradient_flow.png``: what ``python -m examples.gradient_flow`` measures (its functions,
  its data), the norm of dL/dh_t against the distance from the loss, on axes that hold every
  curve;
* ``forget_gate_paths.png``: the LSTM with its forget bias + 3, dL/dc along the cell path alone
  against the total, from the numbers the BPTT page's code computes (``bptt.md``);
* ``truncation_clipping.png``: ``examples/char_lm.py``'s model and text trained with truncated
  BPTT over two chunk lengths, with and without clipping: the loss and the gradient norm;
* ``tutorial_loss.png``: the loss curves of the tutorial page, whose code this script runs
  exactly as the page shows it (``tutorial.md``), and their difference.

Each picture is saved at DPI dots per inch with a small palette, to keep the files small in the
repository. The graph drawings place each gradient label where no arrow crosses it; a label
that finds no such place is recorded in ``CROSSED`` (the guide's tests require it empty).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402
from PIL import Image  # noqa: E402  (installed with matplotlib)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TUTORIAL = HERE / "tutorial.md"
BPTT = HERE / "bptt.md"
FIGURES = ("rnn_build.png", "lstm_build.png", "gru_build.png",
           "rnn_step.png", "lstm_step.png", "gru_step.png", "bptt_unrolled.png",
           "gradient_flow.png", "forget_gate_paths.png", "truncation_clipping.png",
           "tutorial_loss.png")
PASSES = 6  # truncation_clipping: passes over the text
DPI = 150  # dots per inch: the gradient labels' subscripts stay legible
CROSSED: dict[str, list[str]] = {}  # figure title -> gradient labels an arrow crosses

STYLE = {  # node kind -> (face colour, edge colour, box style)
    "in": ("#dbe9f6", "#2a6cb0", "round,pad=0.35"),
    "param": ("#fde7c8", "#c47a14", "round,pad=0.3"),
    "op": ("white", "#333333", "square,pad=0.35"),
    "out": ("#d9f0d3", "#2e7d32", "round,pad=0.35"),
}


# -- drawing ------------------------------------------------------------------------------------
def draw_graph(ax, nodes: dict, edges: list, title: str) -> None:
    """nodes: {key: (x, y, label, kind, gradient)}, the gradient a label or a triple
    (label, dx, dy) giving its preferred place, or None; edges: [(from, to)].

    The arrows run from box edge to box edge. Each gradient label then goes to the first place,
    among its preferred one and eight around its node, that no arrow crosses and no box or
    other label covers; a label with no such place keeps its first and is recorded in
    CROSSED[title]."""
    boxes = {}
    for key, (x, y, label, kind, _) in nodes.items():
        face, edge, box = STYLE[kind]
        boxes[key] = ax.text(x, y, label, ha="center", va="center", fontsize=11, zorder=3,
                             bbox=dict(boxstyle=box, fc=face, ec=edge, lw=1.2))
    xs = [n[0] for n in nodes.values()]
    ys = [n[1] for n in nodes.values()]
    ax.set_xlim(min(xs) - 1.6, max(xs) + 1.6)
    ax.set_ylim(min(ys) - 1.3, max(ys) + 1.3)
    ax.set_title(title, fontsize=12)
    ax.axis("off")
    # Lay the boxes out once, to learn their extents in data coordinates (which neither the
    # saving resolution nor the tight crop changes); each arrow runs from edge to edge.
    ax.figure.canvas.draw()
    to_data = ax.transData.inverted()
    extent = {k: box.get_bbox_patch().get_window_extent().transformed(to_data)
              for k, box in boxes.items()}
    segments = []
    for a, b in edges:
        start, end = edge_points(extent[a], extent[b])
        segments.append((start, end))
        ax.annotate("", xy=end, xytext=start, zorder=2,
                    arrowprops=dict(arrowstyle="-|>", color="#444444", lw=1.1, shrinkA=0,
                                    shrinkB=0, mutation_scale=14))
    keys = list(extent)
    for k, a in enumerate(keys):  # no box over another, no arrow through a box it does not join
        for b in keys[k + 1:]:
            if extent[a].overlaps(extent[b]):
                CROSSED.setdefault(title, []).append(f"boxes {a} and {b} overlap")
    for (a, b), segment in zip(edges, segments):
        (sx, sy), (ex, ey) = segment
        if (ex - sx) ** 2 + (ey - sy) ** 2 < 0.3 ** 2:
            CROSSED.setdefault(title, []).append(f"the arrow {a} -> {b} is too short to see")
        for key, box in extent.items():
            if key not in (a, b) and crosses((box.x0, box.y0, box.x1, box.y1), segment):
                CROSSED.setdefault(title, []).append(f"the arrow {a} -> {b} crosses {key}")
    taken = list(extent.values())
    for key, (*_, grad) in nodes.items():
        if grad:
            place_label(ax, grad, extent[key], segments, taken, title)


def place_label(ax, grad, node, segments, taken, title) -> None:
    """Put a gradient label beside its node's box where no arrow crosses it (see draw_graph)."""
    text, first = (grad, None) if isinstance(grad, str) else (grad[0], grad[1:])
    label = ax.text(0, 0, text, ha="center", va="center", fontsize=9, color="#c62828",
                    zorder=4)
    ax.figure.canvas.draw()
    size = label.get_window_extent().transformed(ax.transData.inverted())
    w, h = size.width + 0.1, size.height + 0.06
    (x0, y0), (x1, y1) = node.get_points()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    gap = 0.08
    places = [(cx, y0 - gap - h / 2), (cx, y1 + gap + h / 2),
              (x1 + gap + w / 2, cy), (x0 - gap - w / 2, cy),
              (x1 - w / 2, y0 - gap - h / 2), (x0 + w / 2, y0 - gap - h / 2),
              (x1 - w / 2, y1 + gap + h / 2), (x0 + w / 2, y1 + gap + h / 2),
              (cx, y0 - 2 * gap - 1.5 * h)]
    if first is not None:
        places.insert(0, (cx + first[0], cy + first[1]))
    (left, right), (bottom, top) = ax.get_xlim(), ax.get_ylim()

    def free(px, py) -> bool:
        rect = (px - w / 2, py - h / 2, px + w / 2, py + h / 2)
        inside = left <= rect[0] and rect[2] <= right and bottom <= rect[1] and rect[3] <= top
        return inside and not any(crosses(rect, s) for s in segments) and not any(
            r.x0 < rect[2] and rect[0] < r.x1 and r.y0 < rect[3] and rect[1] < r.y1
            for r in taken)

    px, py = next((p for p in places if free(*p)), places[0])
    if not free(px, py):
        CROSSED.setdefault(title, []).append(text)
    label.set_position((px, py))
    taken.append(Bbox.from_extents(px - w / 2, py - h / 2, px + w / 2, py + h / 2))


def crosses(rect, segment, samples: int = 200) -> bool:
    """Whether a straight segment passes through a rectangle (x0, y0, x1, y1)."""
    (sx, sy), (ex, ey) = segment
    return any(rect[0] <= sx + (ex - sx) * k / samples <= rect[2]
               and rect[1] <= sy + (ey - sy) * k / samples <= rect[3]
               for k in range(samples + 1))


def edge_points(box_a, box_b) -> tuple[tuple, tuple]:
    """Where the segment between two boxes' centres leaves the first and enters the second."""
    (ax_, ay), (bx, by) = box_a.get_points().mean(axis=0), box_b.get_points().mean(axis=0)
    dx, dy = bx - ax_, by - ay

    def to_edge(box, sign):
        hw, hh = box.width / 2 + 0.04, box.height / 2 + 0.04
        k = min(hw / abs(dx) if dx else float("inf"), hh / abs(dy) if dy else float("inf"))
        return sign * k * dx, sign * k * dy

    ox, oy = to_edge(box_a, 1)
    ix, iy = to_edge(box_b, -1)
    return (ax_ + ox, ay + oy), (bx + ix, by + iy)


def save_small(fig, path: Path) -> Path:
    """Save, then re-encode with a 64-colour palette: the pictures are line drawings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    shrink(path)
    return path


def shrink(path: Path) -> None:
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=64)
    small.save(path, optimize=True, dpi=(DPI, DPI))


# -- one step of each cell ----------------------------------------------------------------------
def rnn_step(out: Path) -> Path:
    nodes = {
        "x": (0, 3, r"$x_t$  (B, I)", "in", r"$dx_t = dpre\,W_{ih}$"),
        "h_prev": (0, 1, r"$h_{t-1}$  (B, H)", "in", r"$dh_{t-1} = dpre\,W_{hh}$"),
        "Wih": (3, 4.5, r"$W_{ih}, b_{ih}$", "param", r"$dW_{ih} = dpre^T x$"),
        "Whh": (3, -0.5, r"$W_{hh}, b_{hh}$", "param", r"$dW_{hh} = dpre^T h_{t-1}$"),
        "xp": (3, 3, r"$x W_{ih}^T + b_{ih}$", "op", None),
        "hp": (3, 1, r"$h_{t-1} W_{hh}^T + b_{hh}$", "op", None),
        "pre": (6, 2, r"$pre$ = sum  (B, H)", "op", r"$dpre = dh \odot act'(pre)$"),
        "h": (9, 2, r"$h_t = act(pre)$", "out", r"$dh$ (from above and from $t+1$)"),
    }
    edges = [("x", "xp"), ("Wih", "xp"), ("h_prev", "hp"), ("Whh", "hp"), ("xp", "pre"),
             ("hp", "pre"), ("pre", "h")]
    fig, ax = plt.subplots(figsize=(9, 4))
    draw_graph(ax, nodes, edges, "RNN: one step (black: forward; red: the gradient a node gets)")
    return save_small(fig, out / "rnn_step.png")


def lstm_step(out: Path) -> Path:
    nodes = {
        "x": (0, 5, r"$x_t$", "in", r"$dx_t = dgates\,W_{ih}$"),
        "h_prev": (0, 2, r"$h_{t-1}$  (B, $H_{out}$)", "in", r"$dh_{t-1} = dgates\,W_{hh}$"),
        "c_prev": (0, 8, r"$c_{t-1}$  (B, H)", "in", r"$dc_{t-1} = dc \odot f$"),
        "gates": (2.7, 3.5, r"$gates = x W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh}$"
                  "\n(B, 4H): $i\\,|\\,f\\,|\\,g\\,|\\,o$", "op", r"$dgates$ (B, 4H)"),
        "f": (6.5, 5.9, r"$f = \sigma(\cdot)$", "op", r"$df = dc \odot c_{t-1}$"),
        "i": (6.5, 4.5, r"$i = \sigma(\cdot)$", "op", r"$di = dc \odot g$"),
        "g": (6.5, 3.1, r"$g = \tanh(\cdot)$", "op", r"$dg = dc \odot i$"),
        "o": (6.5, 1.2, r"$o = \sigma(\cdot)$", "op", r"$do = dh_{full} \odot \tanh c$"),
        "c": (11.5, 8, r"$c_t = f \odot c_{t-1} + i \odot g$", "out",
              r"$dc = dc_{next} + dh_{full} \odot o \odot (1 - \tanh^2 c)$"),
        "tc": (11.5, 3.5, r"$\tanh(c_t)$", "op", None),
        "hf": (13, 1.2, r"$h_{full} = o \odot \tanh(c_t)$", "op",
               r"$dh_{full} = dh\,W_{hr}$"),
        "h": (16.2, 1.2, r"$h_t = h_{full} W_{hr}^T$", "out", r"$dW_{hr} = dh^T h_{full}$"),
    }
    edges = [("x", "gates"), ("h_prev", "gates"), ("gates", "i"), ("gates", "f"),
             ("gates", "g"), ("gates", "o"), ("c_prev", "c"), ("f", "c"), ("i", "c"),
             ("g", "c"), ("c", "tc"), ("tc", "hf"), ("o", "hf"), ("hf", "h")]
    fig, ax = plt.subplots(figsize=(14, 6))
    draw_graph(ax, nodes, edges, "LSTM: one step, torch's gate order i, f, g, o; "
               r"the projection $W_{hr}$ only with proj_size > 0")
    return save_small(fig, out / "lstm_step.png")


def gru_step(out: Path) -> Path:
    nodes = {
        "x": (0, 5.5, r"$x_t$", "in", r"$dx_t = dx_{proj}\,W_{ih}$"),
        "h_prev": (0, 0.3, r"$h_{t-1}$  (B, H)", "in",
                   r"$dh_{t-1} = dh \odot z + dgh\,W_{hh}$"),
        "x_proj": (3, 5.5, r"$x_{proj} = x W_{ih}^T + b_{ih}$" "\n(B, 3H): $r\\,|\\,z\\,|\\,n$",
                   "op", (r"$dx_{proj}$", 0, 0.5)),
        "gh": (3, 2.0, r"$gh = h_{t-1} W_{hh}^T + b_{hh}$" "\n(B, 3H): $r\\,|\\,z\\,|\\,n$",
               "op", r"$dgh$ ($n$ block: $\odot\, r$)"),
        "r": (6.5, 4.4, r"$r = \sigma(x_{proj,r} + gh_r)$", "op", r"$dr = dn_{pre} \odot gh_n$"),
        "z": (6.5, 1.3, r"$z = \sigma(x_{proj,z} + gh_z)$", "op",
              r"$dz = dh \odot (h_{t-1} - n)$"),
        "rg": (9, 3.0, r"$r \odot gh_n$", "op", None),
        "n": (11, 5.5, r"$n = \tanh(x_{proj,n} + r \odot gh_n)$", "op",
              (r"$dn = dh \odot (1 - z)$", 0, 0.4)),
        "h": (13.5, 1.2, r"$h_t = (1 - z) \odot n + z \odot h_{t-1}$", "out", r"$dh$"),
    }
    edges = [("x", "x_proj"), ("h_prev", "gh"), ("x_proj", "r"), ("gh", "r"), ("x_proj", "z"),
             ("gh", "z"), ("r", "rg"), ("gh", "rg"), ("x_proj", "n"), ("rg", "n"), ("n", "h"),
             ("z", "h"), ("h_prev", "h")]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    draw_graph(ax, nodes, edges, r"GRU as torch computes it: $r$ multiplies "
               r"$(h_{t-1} W_{hn}^T + b_{hn})$, not $h_{t-1}$")
    return save_small(fig, out / "gru_step.png")


def built_up(out: Path, name: str, panels: list, width: float = 5.2) -> Path:
    """A cell drawn in stages, one panel per stage: [(title, nodes, edges)], forward only."""
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.9))
    for ax, (title, nodes, edges) in zip(axes, panels):
        draw_graph(ax, nodes, edges, title)
        ax.title.set_fontsize(10.5)
    return save_small(fig, out / name)


def rnn_build(out: Path) -> Path:
    x, h_prev = (0, 2.6, r"$x_t$", "in", None), (0, 0.4, r"$h_{t-1}$", "in", None)
    return built_up(out, "rnn_build.png", [
        (r"1. a layer: $h = \tanh(x W^T + b)$",
         {"x": x, "a": (3.5, 2.6, r"$\tanh(x_t W_{ih}^T + b)$", "op", None),
          "h": (7, 2.6, r"$h_t$", "out", None)},
         [("x", "a"), ("a", "h")]),
        ("2. + a loop: each step also reads the state the last step wrote",
         {"x": x, "h_prev": h_prev,
          "a": (3.5, 1.5, "$\\tanh(x_t W_{ih}^T$\n$+\\ h_{t-1} W_{hh}^T + b)$", "op", None),
          "h": (8.4, 1.5, "$h_t$: to the output\nand to step $t+1$", "out", None)},
         [("x", "a"), ("h_prev", "a"), ("a", "h")]),
    ], width=5.6)


def lstm_build(out: Path) -> Path:
    line = {"c_prev": (0, 3.4, r"$c_{t-1}$", "in", None),
            "keep": (2.6, 3.4, r"$f \odot c_{t-1}$", "op", None),
            "f": (2.6, 1.7, "$f = \\sigma(\\ldots)$\nwhat to keep", "op", None)}
    line_edges = [("c_prev", "keep"), ("f", "keep")]
    write = {"add": (5.4, 3.4, r"$+$", "op", None),
             "c": (7.6, 3.4, r"$c_t$", "out", None),
             "ig": (5.4, 1.7, r"$i \odot g$", "op", None)}
    write_edges = [("keep", "add"), ("ig", "add"), ("add", "c")]
    return built_up(out, "lstm_build.png", [
        ("1. a memory line: the cell state, scaled by the forget gate",
         {**line, "c": (5.4, 3.4, r"$c_t$", "out", None)}, [*line_edges, ("keep", "c")]),
        ("2. + writing: the input gate lets a candidate in",
         {**line, **write,
          "g": (4.1, 0, "$g = \\tanh(\\ldots)$\nwhat to write", "op", None),
          "i": (6.9, 0, "$i = \\sigma(\\ldots)$\nhow much", "op", None)},
         [*line_edges, *write_edges, ("g", "ig"), ("i", "ig")]),
        ("3. + showing: the output gate reads the memory out",
         {**line, **write,
          "t": (7.6, 1.7, r"$\tanh(c_t)$", "op", None),
          "o": (3.4, 0, "$o = \\sigma(\\ldots)$\nhow much to show", "op", None),
          "h": (7.6, 0, r"$h_t = o \odot \tanh(c_t)$", "out", None)},
         [*line_edges, *write_edges, ("c", "t"), ("t", "h"), ("o", "h")]),
    ], width=6.2)


def gru_build(out: Path) -> Path:
    x, h_prev = (0, 3.4, r"$x_t$", "in", None), (0, 1.6, r"$h_{t-1}$", "in", None)
    n = (3.6, 3.4, "$n = \\tanh(x_t W_{in}^T + b_{in}$\n$+\\ h_{t-1} W_{hn}^T + b_{hn})$", "op",
         None)
    z = (3.6, 0, "$z = \\sigma(\\ldots)$: how much\nof the old state to keep", "op", None)
    blend = (7.6, 1.6, "$h_t = (1 - z) \\odot n$\n$+\\ z \\odot h_{t-1}$", "out", None)
    edges = [("x", "n"), ("h_prev", "n"), ("n", "h")]
    return built_up(out, "gru_build.png", [
        ("1. a candidate state from the input and the old state",
         {"x": x, "h_prev": h_prev, "n": n, "h": (7.6, 3.4, r"$h_t = n$", "out", None)}, edges),
        ("2. + the update gate: keep some of the old state instead",
         {"x": x, "h_prev": h_prev, "n": n, "z": z, "h": blend},
         [*edges, ("z", "h"), ("h_prev", "h")]),
        ("3. + the reset gate: how much of the old state the candidate reads",
         {"x": x, "h_prev": h_prev, "z": z, "h": blend,
          "n": (3.6, 3.4, "$n = \\tanh(x_t W_{in}^T + b_{in}$\n"
                "$+\\ r \\odot (h_{t-1} W_{hn}^T + b_{hn}))$", "op", None),
          "r": (1.2, 5.0, r"$r = \sigma(\ldots)$", "op", None)},
         [*edges, ("r", "n"), ("z", "h"), ("h_prev", "h")]),
    ], width=6.2)


def bptt_unrolled(out: Path) -> Path:
    T = 4
    nodes: dict = {"h0": (0, 2, r"$h_0$", "in", None)}
    edges = []
    for t in range(1, T + 1):
        x = 3 * t
        nodes[f"x{t}"] = (x - 1.5, 0, rf"$x_{t}$", "in", None)
        nodes[f"s{t}"] = (x - 1.5, 2, f"step {t}", "op", None)
        nodes[f"h{t}"] = (x, 2, rf"$h_{t}$", "out", None)
        nodes[f"L{t}"] = (x, 4, rf"$L_{t}$", "op", None)
        prev = "h0" if t == 1 else f"h{t - 1}"
        edges += [(prev, f"s{t}"), (f"x{t}", f"s{t}"), (f"s{t}", f"h{t}"), (f"h{t}", f"L{t}")]
    nodes["W"] = (6, -1.6, r"$W_{ih}, W_{hh}, b$: the same arrays at every step", "param", None)
    fig, ax = plt.subplots(figsize=(11, 5))
    draw_graph(ax, nodes, edges, "The unrolled graph: forward left to right (black), "
               "backward right to left (red)")
    for t in range(1, T + 1):  # shared weights
        ax.plot([6, 3 * t - 1.5], [-1.3, -0.35], color="#c47a14", lw=0.8, ls=":")
    for t in range(T, 0, -1):  # dL/dh flowing from t to t - 1
        ax.annotate("", xy=(3 * t - 3 + 0.25, 2.55), xytext=(3 * t - 0.25, 2.55),
                    arrowprops=dict(arrowstyle="-|>", color="#c62828", lw=1.6,
                                    connectionstyle="arc3,rad=0.35"))
        ax.text(3 * t - 1.5, 3.25, rf"$\frac{{\partial L}}{{\partial h_{{{t - 1}}}}}$",
                color="#c62828", ha="center", fontsize=14)
        ax.annotate("", xy=(3 * t + 0.15, 2.45), xytext=(3 * t + 0.15, 3.6),
                    arrowprops=dict(arrowstyle="-|>", color="#c62828", lw=1.2))
    ax.text(7.5, -2.6, r"$dW = \sum_t dW_t$: every step adds its share; computed as one "
            r"product over the stacked steps", ha="center", color="#c62828", fontsize=10)
    ax.set_ylim(-3.0, 4.8)
    return save_small(fig, out / "bptt_unrolled.png")


# -- figures computed by running code -----------------------------------------------------------
def gradient_flow(out: Path) -> tuple[Path, dict]:
    """What ``python -m examples.gradient_flow`` draws (``--seed 0``), at this guide's
    resolution; returns the medians and the spectral radii of the tanh RNN's W_hh."""
    from examples import gradient_flow as example

    fig, medians, radii = example.draw(100, 0)
    return save_small(fig, out / "gradient_flow.png"), {"medians": medians, "radii": radii}


def forget_gate_paths(out: Path, namespace: dict | None = None) -> Path:
    """The BPTT page's forget-bias numbers, from the page's own code (``bptt.md``)."""
    import numpy as np

    if namespace is None:
        namespace, _ = run_page(BPTT)
    flow, warm = namespace["flow"], namespace["warm"]
    k = np.arange(1, len(flow) + 1)
    fig, ax = plt.subplots(figsize=(8, 4.6))
    ax.semilogy(k, flow[:, 1], lw=2.5, color="tab:red", label="||dL/dc||, total")
    ax.semilogy(k, flow[:, 2], lw=2, ls="--", color="tab:purple",
                label="||dL/dc|| along the cell path alone (x f at each step)")
    ax.semilogy(k, flow[:, 0], lw=1.5, color="tab:blue", label="||dL/dh||, total")
    ax.semilogy(k, warm[:, 1], lw=1.5, ls=":", color="tab:red",
                label="||dL/dc||, total, after 100 steps of warm-up")
    ax.set_xlabel("steps back from the loss, k (k = 100 is t = 0)")
    ax.set_ylabel("median over the batch")
    ax.set_title("LSTM, s = 1, forget-gate bias + 3 (mean f = 0.949): most of dL/dc comes "
                 "back through h and the gates", fontsize=10)
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=8.5, loc="lower left")
    return save_small(fig, out / "forget_gate_paths.png")


def truncation_clipping(out: Path) -> tuple[Path, dict]:
    """examples/char_lm.py's model and text, trained with truncated BPTT over chunks of 8 and of
    64 characters, with and without clipping the gradient norm to 1: the loss of each chunk
    and the gradient's norm before clipping, against the characters read."""
    import numpy as np

    import scratch
    from examples.char_lm import BATCH, EMBEDDING, HIDDEN, load_text, streams
    from scratch.losses import flat_cross_entropy
    from scratch.tbptt import cut, split_chunks

    text = load_text()
    vocab = sorted(set(text))
    x, y = streams(np.array([vocab.index(ch) for ch in text]), BATCH)
    loss = scratch.CrossEntropyLoss()
    runs = {}
    for k in (8, 64):
        for max_norm in (None, 1.0):
            model = scratch.CharLM(len(vocab), EMBEDDING, HIDDEN, kind="rnn", seed=0)
            optimizer = scratch.SGD(model, lr=1.0)
            losses, norms = [], []
            for _ in range(PASSES):  # each pass over the text starts from a zero state
                state = None
                for x_k, y_k in zip(split_chunks(x, k), split_chunks(y, k)):
                    model.zero_grad()
                    output, h_n = model(x_k, state)
                    value, doutput = flat_cross_entropy(loss, output, y_k)
                    model.backward(doutput)  # back to the chunk's first step, no further
                    norms.append(scratch.clip_grad_norm_(
                        model, float("inf") if max_norm is None else max_norm))
                    optimizer.step()
                    state = cut(h_n)  # the next chunk starts from these values
                    losses.append(float(value))
            runs[(k, max_norm)] = (np.array(losses), np.array(norms))
    fig, (ax_loss, ax_norm) = plt.subplots(2, 1, figsize=(9, 7.5), sharex=True,
                                           layout="constrained")
    for (k, max_norm), (losses, norms) in runs.items():
        read = np.arange(1, len(losses) + 1) * k  # characters read per stream
        color = "tab:blue" if k == 8 else "tab:orange"
        style = "-" if max_norm else ":"
        label = f"chunks of {k}, " + ("clipped to norm 1" if max_norm else "no clipping")
        ax_loss.plot(read, losses, color=color, ls=style, lw=1.6, label=label)
        ax_norm.semilogy(read, norms, color=color, ls=style, lw=1.3, label=label)
    ax_loss.axhline(np.log(len(vocab)), color="gray", lw=0.8, ls="--")
    ax_loss.text(read[-1], np.log(len(vocab)), "uniform guess ", ha="right", va="bottom",
                 color="gray", fontsize=9)
    ax_loss.set_ylabel("cross-entropy of the chunk (nats per character)")
    ax_loss.set_title(f"CharLM(kind='rnn', tanh, H = {HIDDEN}) on examples/char_lm.py's text, "
                      f"plain SGD (lr 1), {PASSES} passes", fontsize=10)
    ax_loss.legend(fontsize=8.5)
    ax_loss.grid(alpha=0.3)
    ax_norm.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax_norm.set_ylabel("gradient norm before clipping")
    ax_norm.set_xlabel("characters read per stream (one update per chunk)")
    ax_norm.grid(alpha=0.3, which="major")
    return save_small(fig, out / "truncation_clipping.png"), runs


def code_blocks(page: Path) -> list[str]:
    """The ```python blocks of a page, in order."""
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"),
                      flags=re.M | re.S)


def run_page(page: Path) -> tuple[dict, str]:
    """Run a page's python blocks in order in one namespace, as shown; (namespace, stdout)."""
    namespace: dict = {"__name__": "__study_page__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in code_blocks(page):
            exec(compile(block, str(page), "exec"), namespace)
    return namespace, printed.getvalue()


def tutorial_loss(out: Path, namespace: dict | None = None) -> Path:
    import numpy as np

    if namespace is None:
        namespace, _ = run_page(TUTORIAL)
    losses, losses_t = np.array(namespace["losses"]), np.array(namespace["losses_torch"])
    fig, (ax, ax_diff) = plt.subplots(2, 1, figsize=(7.5, 5.6), sharex=True, layout="constrained",
                                      gridspec_kw={"height_ratios": [2, 1.2]})
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, lw=3, color="tab:blue", label="scratch (NumPy)")
    ax.plot(steps, losses_t, lw=1.2, ls="--", color="tab:orange", label="torch")
    ax.set_yscale("log")
    ax.set_ylabel("MSE loss of the batch")
    ax.set_title("SimpleRNN(10, 20, 1): the same weights, data and Adam steps on both sides",
                 fontsize=10)
    ax.legend()
    gap = np.abs(losses - losses_t)
    floor = 1e-19
    ax_diff.semilogy(steps, np.maximum(gap, floor), ".", ms=3, color="tab:red")
    ax_diff.set_ylim(floor / 3, 1e-12)
    ax_diff.set_ylabel("|scratch - torch|")
    ax_diff.set_xlabel("update")
    ax_diff.set_title(f"their difference: at most {gap.max():.1e} ({np.sum(gap == 0)} of "
                      f"{len(gap)} updates equal exactly, drawn at {floor:.0e})", fontsize=9)
    return save_small(fig, out / "tutorial_loss.png")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python docs/study/figures.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "figures",
                        help="the folder to write into (default: %(default)s)")
    args = parser.parse_args(argv)
    written = [rnn_build(args.out), lstm_build(args.out), gru_build(args.out),
               rnn_step(args.out), lstm_step(args.out), gru_step(args.out),
               bptt_unrolled(args.out)]
    path, flow = gradient_flow(args.out)
    written += [path, forget_gate_paths(args.out), truncation_clipping(args.out)[0],
                tutorial_loss(args.out)]
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return {"written": written, "gradient_flow": flow}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # run as a script from anywhere: import the repository's code
    main()
