"""The study guide's figures, every one drawn by this script (``make figures``).

    python docs/study/figures.py [--out docs/study/figures]

Writes, into the output folder:

* ``rnn_step.png``, ``lstm_step.png``, ``gru_step.png``: one time step's computational graph,
  forward in black, the gradient each node receives in red;
* ``bptt_unrolled.png``: the unrolled graph of four steps, with dL/dh flowing from t+1 to t;
* ``gradient_flow.png``: ``python -m examples.gradient_flow``'s figure, the norm of dL/dh_t
  against the distance from the loss;
* ``tutorial_loss.png``: the loss curves of the tutorial page, whose code this script runs
  exactly as the page shows it (``tutorial.md``).

Each picture is saved with a small palette, to keep the files small in the repository.
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
from PIL import Image  # noqa: E402  (installed with matplotlib)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TUTORIAL = HERE / "tutorial.md"
FIGURES = ("rnn_step.png", "lstm_step.png", "gru_step.png", "bptt_unrolled.png",
           "gradient_flow.png", "tutorial_loss.png")
DPI = 80

STYLE = {  # node kind -> (face colour, edge colour, box style)
    "in": ("#dbe9f6", "#2a6cb0", "round,pad=0.35"),
    "param": ("#fde7c8", "#c47a14", "round,pad=0.3"),
    "op": ("white", "#333333", "square,pad=0.35"),
    "out": ("#d9f0d3", "#2e7d32", "round,pad=0.35"),
}


# -- drawing ------------------------------------------------------------------------------------
def draw_graph(ax, nodes: dict, edges: list, title: str) -> None:
    """nodes: {key: (x, y, label, kind, gradient)}, the gradient a label (drawn under the node)
    or a triple (label, dx, dy) placing it, or None; edges: [(from, to)]."""
    boxes = {}
    for key, (x, y, label, kind, grad) in nodes.items():
        face, edge, box = STYLE[kind]
        boxes[key] = ax.text(x, y, label, ha="center", va="center", fontsize=11, zorder=3,
                             bbox=dict(boxstyle=box, fc=face, ec=edge, lw=1.2))
        if grad:
            text, dx, dy = (grad, 0.0, -0.5 - 0.25 * label.count("\n")) \
                if isinstance(grad, str) else grad
            ax.text(x + dx, y + dy, text, ha="center", va="top" if dy < 0 else "bottom",
                    fontsize=9, color="#c62828", zorder=4,
                    bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.85))
    xs = [n[0] for n in nodes.values()]
    ys = [n[1] for n in nodes.values()]
    ax.set_xlim(min(xs) - 1.2, max(xs) + 1.2)
    ax.set_ylim(min(ys) - 1.2, max(ys) + 1.2)
    ax.set_title(title, fontsize=12)
    ax.axis("off")
    # Lay the boxes out once, to learn their extents in data coordinates (which neither the
    # saving resolution nor the tight crop changes); each arrow runs from edge to edge.
    ax.figure.canvas.draw()
    to_data = ax.transData.inverted()
    extent = {k: box.get_bbox_patch().get_window_extent().transformed(to_data)
              for k, box in boxes.items()}
    for a, b in edges:
        start, end = edge_points(extent[a], extent[b])
        ax.annotate("", xy=end, xytext=start, zorder=2,
                    arrowprops=dict(arrowstyle="-|>", color="#444444", lw=1.1, shrinkA=0,
                                    shrinkB=0, mutation_scale=14))


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
    small.save(path, optimize=True)


# -- one step of each cell ----------------------------------------------------------------------
def rnn_step(out: Path) -> Path:
    nodes = {
        "x": (0, 3, r"$x_t$  (B, I)", "in", None),
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
        "x": (0, 5, r"$x_t$", "in", None),
        "h_prev": (0, 2, r"$h_{t-1}$  (B, $H_{out}$)", "in", r"$dh_{t-1} = dgates\,W_{hh}$"),
        "c_prev": (0, 7.5, r"$c_{t-1}$  (B, H)", "in", r"$dc_{t-1} = dc \odot f$"),
        "gates": (3, 3.5, r"$gates = x W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh}$"
                  "\n(B, 4H): $i\\,|\\,f\\,|\\,g\\,|\\,o$", "op", r"$dgates$ (B, 4H)"),
        "i": (6.5, 5.8, r"$i = \sigma(\cdot)$", "op", r"$di = dc \odot g$"),
        "f": (6.5, 4.4, r"$f = \sigma(\cdot)$", "op", r"$df = dc \odot c_{t-1}$"),
        "g": (6.5, 3, r"$g = \tanh(\cdot)$", "op", r"$dg = dc \odot i$"),
        "o": (6.5, 1.2, r"$o = \sigma(\cdot)$", "op", r"$do = dh_{full} \odot \tanh c$"),
        "c": (10, 7, r"$c_t = f \odot c_{t-1} + i \odot g$", "out",
              (r"$dc = dc_{next} + dh_{full} \odot o \odot (1 - \tanh^2 c)$", 1.5, 0.4)),
        "tc": (10, 3, r"$\tanh(c_t)$", "op", None),
        "hf": (12, 1.2, r"$h_{full} = o \odot \tanh(c_t)$", "op",
               r"$dh_{full} = dh\,W_{hr}$"),
        "h": (15, 1.2, r"$h_t = h_{full} W_{hr}^T$", "out", r"$dW_{hr} = dh^T h_{full}$"),
    }
    edges = [("x", "gates"), ("h_prev", "gates"), ("gates", "i"), ("gates", "f"),
             ("gates", "g"), ("gates", "o"), ("c_prev", "c"), ("f", "c"), ("i", "c"),
             ("g", "c"), ("c", "tc"), ("tc", "hf"), ("o", "hf"), ("hf", "h")]
    fig, ax = plt.subplots(figsize=(13, 5.5))
    draw_graph(ax, nodes, edges, "LSTM: one step, torch's gate order i, f, g, o; "
               r"the projection $W_{hr}$ only with proj_size > 0")
    return save_small(fig, out / "lstm_step.png")


def gru_step(out: Path) -> Path:
    nodes = {
        "x": (0, 5.5, r"$x_t$", "in", None),
        "h_prev": (0, 0.3, r"$h_{t-1}$  (B, H)", "in",
                   r"$dh_{t-1} = dh \odot z + dgh\,W_{hh}$"),
        "gi": (3, 5.5, r"$gi = x W_{ih}^T + b_{ih}$" "\n(B, 3H): $r\\,|\\,z\\,|\\,n$", "op",
               (r"$dgi$", 0, 0.5)),
        "gh": (3, 2.0, r"$gh = h_{t-1} W_{hh}^T + b_{hh}$" "\n(B, 3H): $r\\,|\\,z\\,|\\,n$",
               "op", r"$dgh$ ($n$ block: $\odot\, r$)"),
        "r": (6.5, 4.4, r"$r = \sigma(gi_r + gh_r)$", "op", r"$dr = dn_{pre} \odot gh_n$"),
        "z": (6.5, 2.9, r"$z = \sigma(gi_z + gh_z)$", "op",
              r"$dz = dh \odot (h_{t-1} - n)$"),
        "rg": (9, 1.3, r"$r \odot gh_n$", "op", None),
        "n": (11, 5.5, r"$n = \tanh(gi_n + r \odot gh_n)$", "op",
              (r"$dn = dh \odot (1 - z)$", 0, 0.4)),
        "h": (13.5, 1.2, r"$h_t = (1 - z) \odot n + z \odot h_{t-1}$", "out", r"$dh$"),
    }
    edges = [("x", "gi"), ("h_prev", "gh"), ("gi", "r"), ("gh", "r"), ("gi", "z"),
             ("gh", "z"), ("r", "rg"), ("gh", "rg"), ("gi", "n"), ("rg", "n"), ("n", "h"),
             ("z", "h"), ("h_prev", "h")]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    draw_graph(ax, nodes, edges, r"GRU as torch computes it: $r$ multiplies "
               r"$(h_{t-1} W_{hn}^T + b_{hn})$, not $h_{t-1}$")
    return save_small(fig, out / "gru_step.png")


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
                color="#c62828", ha="center", fontsize=11)
        ax.annotate("", xy=(3 * t + 0.15, 2.45), xytext=(3 * t + 0.15, 3.6),
                    arrowprops=dict(arrowstyle="-|>", color="#c62828", lw=1.2))
    ax.text(7.5, -2.6, r"$dW = \sum_t dW_t$: every step adds its share; computed as one "
            r"product over the stacked steps", ha="center", color="#c62828", fontsize=10)
    ax.set_ylim(-3.0, 4.8)
    return save_small(fig, out / "bptt_unrolled.png")


# -- figures computed by running code -----------------------------------------------------------
def gradient_flow(out: Path) -> tuple[Path, dict]:
    """The example's figure, regenerated; returns its medians and the spectral radii."""
    from examples import gradient_flow as example

    path = out / "gradient_flow.png"
    with contextlib.redirect_stdout(io.StringIO()):
        result = example.main(["--out", str(path)])
    shrink(path)
    radii = {scale: example.spectral_radius(example.make_layer("RNN_TANH", scale, 0))
             for scale in example.SCALES}
    return path, {"medians": result["medians"], "radii": radii}


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
    if namespace is None:
        namespace, _ = run_page(TUTORIAL)
    losses, losses_t = namespace["losses"], namespace["losses_torch"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    steps = range(1, len(losses) + 1)
    ax.plot(steps, losses, lw=3, color="tab:blue", label="scratch (NumPy)")
    ax.plot(steps, losses_t, lw=1.2, ls="--", color="tab:orange", label="torch")
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("MSE loss of the batch")
    ax.set_title("SimpleRNN(10, 20, 1): the same weights, data and Adam steps on both sides",
                 fontsize=10)
    ax.legend()
    return save_small(fig, out / "tutorial_loss.png")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python docs/study/figures.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "figures",
                        help="the folder to write into (default: %(default)s)")
    args = parser.parse_args(argv)
    written = [rnn_step(args.out), lstm_step(args.out), gru_step(args.out),
               bptt_unrolled(args.out)]
    path, flow = gradient_flow(args.out)
    written.append(path)
    written.append(tutorial_loss(args.out))
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
    return {"written": written, "gradient_flow": flow}


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # run as a script from anywhere: import the repository's code
    main()
