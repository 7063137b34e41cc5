"""Fixed cases run before Hypothesis explores, the same in every profile.

Each scenario below is run for every mode, so that every option of the configuration space
(layers, directions, layouts, bias, unbatched input, lengths, hx, projection, the four
dropout modes, both dtypes, long sequences) is covered by a named case whatever Hypothesis
happens to draw. Sizes are small, distinct and never square where a transposition could
hide (input_size != hidden_size, batch != seq_len).

The last scenarios put exact zeros where drawn data never does: in a pre-activation. With no
bias and no hx, a direction that starts on input rows of exactly zero computes
pre = 0 W_ih^T + 0 W_hh^T = 0 at those steps (and so does every layer above it, whose input
there is act(0) = 0 for every mode). That is where relu's derivative is a convention: torch
takes relu'(0) = 0, so the gradient of those input rows is exactly zero, and an
implementation that takes 1 there differs in nothing else. (Zero rows after a non-zero one
meet the state carried so far, in general not zero: they check that zero input is not
special-cased.)
"""

from __future__ import annotations

from parity.case import Case

# name -> the case's fields but mode, seed and device; "proj_size" and "state_grad" given
# for LSTM are adapted to the other modes by pinned_cases().
SCENARIOS: dict[str, dict] = {
    "one layer": dict(input_size=3, hidden_size=4, seq_len=5, batch=3, state_grad="both"),
    "two bidirectional layers, batch_first, variable lengths": dict(
        input_size=2, hidden_size=3, num_layers=2, bidirectional=True, batch_first=True,
        seq_len=6, batch=4, lengths=(6, 3, 1, 5), proj_size=2, state_grad="both",
        dropout_mode="eval", dropout=0.5),
    "unbatched, no hx, train mode with p = 0": dict(
        input_size=4, hidden_size=3, num_layers=2, bidirectional=True, unbatched=True,
        seq_len=4, batch=1, hx=False, state_grad="h", dropout_mode="train_p0"),
    "three layers without bias, dropout p = 1": dict(
        input_size=2, hidden_size=5, num_layers=3, bias=False, seq_len=4, batch=2,
        lengths=(4, 2), proj_size=3, state_grad="c", dropout_mode="train_p1", dropout=1.0),
    "explicit dropout masks, bidirectional, lengths": dict(
        input_size=3, hidden_size=4, num_layers=3, bidirectional=True, batch_first=True,
        seq_len=5, batch=3, lengths=(5, 2, 4), proj_size=1, state_grad="both",
        dropout_mode="train_masks", dropout=0.5),
    "one step, one sequence, no upstream state gradient": dict(
        input_size=2, hidden_size=3, seq_len=1, batch=1, state_grad="none"),
    "float32, long sequences, two bidirectional layers": dict(
        input_size=4, hidden_size=6, num_layers=2, bidirectional=True, seq_len=40, batch=3,
        lengths=(40, 17, 33), proj_size=4, state_grad="both", dtype="float32"),
    "float32, explicit dropout masks": dict(
        input_size=3, hidden_size=5, num_layers=2, seq_len=6, batch=2, state_grad="both",
        dropout_mode="train_masks", dropout=0.25, dtype="float32"),
    # pre-activations of exactly zero: steps 0 and 1 in both layers; step 3 is a zero row
    # after non-zero ones
    "pre-activation exactly 0: zero input rows first, no bias, no hx, two layers": dict(
        input_size=3, hidden_size=4, num_layers=2, seq_len=5, batch=3, bias=False, hx=False,
        zero_input_steps=(0, 1, 3), proj_size=2, state_grad="both"),
    # the forward direction starts on zero rows at step 0; the reverse one at each sequence's
    # own last valid step (5, 3 and 4), zero in every sequence
    "pre-activation exactly 0: bidirectional, batch_first, lengths, zero rows at both ends": dict(
        input_size=2, hidden_size=3, bidirectional=True, batch_first=True, seq_len=6, batch=3,
        lengths=(6, 4, 5), bias=False, hx=False, zero_input_steps=(0, 3, 4, 5), proj_size=1,
        state_grad="both"),
    "pre-activation exactly 0: float32, unbatched, train mode with p = 0": dict(
        input_size=4, hidden_size=2, num_layers=2, unbatched=True, seq_len=4, batch=1,
        bias=False, hx=False, zero_input_steps=(0, 1), state_grad="h",
        dropout_mode="train_p0", dtype="float32"),
}


def pinned_cases(mode: str, device: str = "cpu") -> list[tuple[str, Case]]:
    """The scenarios as cases of this mode on this device, each with its own seed."""
    out = []
    for index, (name, fields) in enumerate(SCENARIOS.items()):
        fields = dict(fields)
        if mode != "LSTM":
            fields.pop("proj_size", None)
            fields["state_grad"] = "none" if fields["state_grad"] == "none" else "h"
        out.append((name, Case(mode=mode, device=device, seed=1000 + index, **fields)))
    return out
