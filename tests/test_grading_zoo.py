"""The zoo against the grader: each member loses the points of the items that grade its bug,
and keeps every other item's.

Each member of parity.zoo is the reference with one realistic bug. For each, ``LOSES`` names
the items that must fail and ``MAY_LOSE`` the items that run the same buggy function in other
configurations (a wrong ``lstm_step_forward`` is wrong with a projection too); every other
item must keep its full weight. Each member is graded on every item, 6 cases per item (the same
derandomized cases every run).
"""

from __future__ import annotations

import pytest

from parity import zoo
from parity.grading.grade import grade_submission
from parity.grading.items import ITEMS_BY_ID
from parity.grading.rubric import rubric_from_dict

LOSES: dict[str, set[str]] = {
    "gru_textbook": {"gru_forward"},
    "lstm_gate_order_ifog": {"lstm_forward", "lstm_backward"},
    "rnn_dh_not_carried": {"rnn_backward"},
    "reverse_starts_at_T": {"lengths"},
    "h_n_last_padded_step": {"lengths"},
    "gru_one_bias_grad": {"bptt"},
    "weight_hr_grad_missing": {"layer"},
    "dropout_after_last_layer": {"dropout"},
    "relu_grad_at_zero": {"rnn_backward"},
    # its step keeps the pre-activation in the cache's field h (against the cache's contract,
    # which rnn_forward checks) and takes relu's slope as (pre >= 0) from it
    "relu_grad_one_at_zero": {"rnn_forward", "rnn_backward"},
    "bias_grad_wrong_axis": {"layer"},
    "bias_grad_batch_mean": {"layer"},
    "layer_input_grad_dropped": {"multi_layer"},
    "state_grad_top_layer_only": {"multi_layer"},
    "grads_overwritten": {"layer"},
    "rnn_transposed_W_hh": {"rnn_forward", "rnn_backward"},
    "lstm_forget_bias_plus_one": {"lstm_forward"},
    "lstm_dc_prev_without_f": {"lstm_backward"},
    "lstm_tanh_c_grad_missing": {"lstm_backward"},
    "sigmoid_grad_of_output": {"lstm_backward", "gru_backward"},
    "gru_update_gate_swapped": {"gru_forward", "gru_backward"},
    "gru_dh_prev_direct_path_only": {"gru_backward"},
    "reverse_output_not_flipped": {"bidirectional"},
    "state_rows_direction_major": {"bidirectional"},
    "dropout_mask_not_in_backward": {"dropout"},
    "padded_output_repeats_state": {"lengths"},
    "b_ih_forgotten": {"layer"},
}
# The same function, graded again in another configuration by these items.
LSTM_STEP = {"proj_size"}  # lstm_step_forward/backward also run with a projection there
STACK = {"multi_layer", "dropout", "bidirectional"}  # RNNBase.forward/backward with L >= 2
MAY_LOSE: dict[str, set[str]] = {
    "lstm_gate_order_ifog": LSTM_STEP,
    "lstm_forget_bias_plus_one": LSTM_STEP,
    "lstm_dc_prev_without_f": LSTM_STEP,
    "lstm_tanh_c_grad_missing": LSTM_STEP,
    "sigmoid_grad_of_output": LSTM_STEP,
    "layer_input_grad_dropped": STACK,
    "state_grad_top_layer_only": STACK,
    "b_ih_forgotten": STACK,
}
RUBRIC = rubric_from_dict({"max_examples": 6})


def test_every_member_has_an_expectation():
    assert set(LOSES) == set(zoo.BY_NAME), (
        "the zoo changed: say which items each new member must lose in LOSES (and MAY_LOSE)")
    for items in list(LOSES.values()) + list(MAY_LOSE.values()):
        assert items <= set(ITEMS_BY_ID)


FEEDBACK_CHECKED = {"gru_textbook", "gru_one_bias_grad", "b_ih_forgotten"}


@pytest.mark.parametrize("name", sorted(zoo.BY_NAME))
def test_member_loses_exactly_the_items_of_its_bug(tmp_path, name):
    try:
        path = zoo.materialize(name, tmp_path)
    except zoo.PatchError as error:  # a lost member would grade nothing: fail, never skip
        pytest.fail(f"zoo member {name} does not apply to scratch/ as it is now (update its "
                    f"patch in parity/zoo/mutants.py): {error}")
    row = grade_submission(path, RUBRIC)
    assert row.error is None
    failed = {item.id for item in row.items if not item.passed}
    kept = {item.id for item in row.items if item.passed}
    assert LOSES[name] <= failed, f"{name} should fail {LOSES[name]}, failed {failed}"
    assert failed <= LOSES[name] | MAY_LOSE.get(name, set()), (
        f"{name} should keep {failed - LOSES[name]}: "
        + "; ".join(i.failure.problem for i in row.items if i.id in failed - LOSES[name]))
    for item in row.items:
        assert item.score == (item.weight if item.id in kept else 0.0)
    assert row.score == sum(i.weight for i in row.items if i.id in kept) < row.max_score
    if name in FEEDBACK_CHECKED:  # the feedback names the function, the tensor and the case
        failure = next(item for item in row.items if item.id in LOSES[name]).failure
        assert failure.kind == "wrong" and failure.shrunk
        assert "differs at index" in failure.problem and "expected" in failure.problem
        assert failure.function in failure.problem
        assert "seed" in failure.case
