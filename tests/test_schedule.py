"""The schedule alone: validations on the grid and at stops, the best dev BLEU, the decay on a
plateau and the patience, with no training."""

import pytest

from minirnnsearch.schedule import PERFECT_BLEU, Schedule


def test_validations_fall_on_the_grid_and_at_every_stop():
    s = Schedule(valid_every=3, patience=2, lr_decay=0.5)
    assert [step for step in range(1, 10) if s.validation_due(step, "")] == [3, 6, 9]
    assert s.validation_due(4, "--max-steps 4 reached") and not s.on_grid(4)


def test_a_grid_validation_without_a_better_bleu_decays_and_counts_towards_patience():
    s = Schedule(valid_every=2, patience=2, lr_decay=0.5)
    assert s.record(2, 10.0) == (True, False)
    assert (s.best_bleu, s.schedule_best, s.bad_validations) == (10.0, 10.0, 0)
    assert s.out_of_patience(2) == ""
    assert s.record(4, 10.0) == (False, True)  # equal is not better
    assert s.out_of_patience(4) == ""
    assert s.record(6, 9.0) == (False, True)
    assert s.bad_validations == 2
    assert s.out_of_patience(6) == "no better dev BLEU in 2 validations"
    assert s.record(8, 11.0) == (True, False) and s.bad_validations == 0


def test_a_validation_off_the_grid_sets_the_best_but_steers_nothing():
    s = Schedule(valid_every=4, patience=1, lr_decay=0.5)
    s.record(4, 5.0)
    assert s.record(5, 7.0) == (True, False)  # a stop between grid points: `best` is saved
    assert (s.best_bleu, s.schedule_best, s.bad_validations) == (7.0, 5.0, 0)
    assert s.record(6, 1.0) == (False, False) and s.bad_validations == 0
    assert s.out_of_patience(6) == ""  # off the grid, even after a bad one on it
    assert s.record(8, 6.0) == (False, False)  # better than the grid's best: no decay
    assert s.record(12, 6.0) == (False, True)
    assert s.out_of_patience(12) == "no better dev BLEU in 1 validations"


def test_a_constant_rate_never_decays():
    s = Schedule(valid_every=1, patience=9, lr_decay=1.0)
    s.record(1, 3.0)
    assert [s.record(step, 1.0)[1] for step in range(2, 6)] == [False] * 4
    assert s.bad_validations == 4


@pytest.mark.parametrize("score", [PERFECT_BLEU, 100.00000000000004])
def test_a_perfect_bleu_stops_at_once_on_or_off_the_grid(score):
    s = Schedule(valid_every=10, patience=5, lr_decay=0.5)
    s.record(3, score)
    assert s.out_of_patience(3) == "dev BLEU 100: no validation can be better"
