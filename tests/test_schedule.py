"""The schedule alone: validations on the grid and at stops, the best dev BLEU, the decay on a
plateau and the patience, with no training."""

import numpy as np
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


# dev BLEU at updates 1, 2, ...: better at 1 and 4, then five in a row no better
SCRIPT = [10.0, 9.0, 9.0, 11.0, 8.0, 8.0, 8.0, 8.0, 8.0]


@pytest.mark.parametrize(("lr_decay_patience", "decays"), [
    (0, [2, 3, 5, 6, 7, 8, 9]),  # at every validation without a better BLEU
    (1, [3, 6, 8]),  # the second in a row since the better one or the last decay
    (2, [7]),  # the count of 2 and 3 ends at 4's better BLEU
])
def test_the_decay_waits_lr_decay_patience_validations_and_the_stop_does_not(
        lr_decay_patience, decays):
    s = Schedule(valid_every=1, patience=4, lr_decay=0.5, lr_decay_patience=lr_decay_patience)
    decided = {step: (*s.record(step, score), s.out_of_patience(step))
               for step, score in enumerate(SCRIPT, 1)}
    assert [step for step, (_, decay, _) in decided.items() if decay] == decays
    assert [step for step, (better, _, _) in decided.items() if better] == [1, 4]
    # the stop's count is not reset by a decay: the fourth in a row, whatever the decay did
    assert [step for step, (_, _, stop) in decided.items() if stop] == [8, 9]
    assert decided[8][2] == "no better dev BLEU in 4 validations"


def test_a_constant_rate_with_lr_decay_patience_never_decays():
    s = Schedule(valid_every=1, patience=9, lr_decay=1.0, lr_decay_patience=1)
    assert [s.record(step, score)[1] for step, score in enumerate(SCRIPT, 1)] == [False] * 9


def old_rule(valid_every, patience, lr_decay, scores):
    """The schedule before --lr-decay-patience, written again: (better, decay, stop) of each
    validation (step, score)."""
    best, grid_best, bad, out = -1.0, -1.0, 0, []
    for step, score in scores:
        better, decay, on_grid = score > best, False, step % valid_every == 0
        best = max(best, score)
        if on_grid:
            if score > grid_best:
                grid_best, bad = score, 0
            else:
                bad, decay = bad + 1, lr_decay < 1
        out.append((better, decay, best >= PERFECT_BLEU - 1e-9 or (on_grid and bad >= patience)))
    return out


def random_validations(rng, n):
    """(step, dev BLEU) of ``n`` validations, on a grid of ``valid_every`` and off it (stops),
    the BLEUs few and repeated so that ties and plateaus are common."""
    valid_every = int(rng.integers(1, 4))
    steps = np.cumsum(rng.integers(1, 2 * valid_every + 1, size=n))
    return valid_every, [(int(t), float(rng.integers(0, 6))) for t in steps]


@pytest.mark.parametrize("seed", range(200))
def test_lr_decay_patience_0_decides_as_the_rule_before_it(seed):
    rng = np.random.default_rng(seed)
    valid_every, validations = random_validations(rng, 30)
    patience, lr_decay = int(rng.integers(1, 5)), float(rng.choice([0.5, 1.0]))
    s = Schedule(valid_every=valid_every, patience=patience, lr_decay=lr_decay)
    ours = []
    for step, score in validations:
        better, decay = s.record(step, score)
        ours.append((better, decay, bool(s.out_of_patience(step))))
    assert ours == old_rule(valid_every, patience, lr_decay, validations)


@pytest.mark.parametrize("seed", range(50))
def test_the_decay_is_pytorchs_reduce_lr_on_plateau(seed):
    """On the grid's validations, the rate after each is that of PyTorch's
    ReduceLROnPlateau(mode='max', patience=N, cooldown=0, threshold=0) fed the same dev BLEUs:
    its count of bad epochs resets at a better one and after each reduction."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    lr_decay_patience = int(rng.integers(0, 4))
    scores = [float(x) for x in rng.integers(0, 6, size=40)]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="max", factor=0.5, patience=lr_decay_patience, threshold=0.0,
        threshold_mode="abs", cooldown=0, eps=0.0)
    s = Schedule(valid_every=1, patience=1000, lr_decay=0.5,
                 lr_decay_patience=lr_decay_patience)
    lr = 1.0
    for step, score in enumerate(scores, 1):
        lr *= 0.5 if s.record(step, score)[1] else 1.0
        theirs.step(score)
        assert lr == opt.param_groups[0]["lr"], step
