"""The schedule of a run: when it validates, when its learning rate decays, when it stops
waiting for a better dev BLEU.

A validation runs every ``valid_every`` updates (the grid) and at every stop, so that ``last``
holds the final state. Only the validations on the grid steer the schedule. A grid validation
without a better dev BLEU than the best of the grid's (``schedule_best``) counts towards
``patience`` (the stop) and towards ``lr_decay_patience`` (the decay): the rate is multiplied by
``lr_decay`` at the ``lr_decay_patience`` + 1-th such validation in a row, counted since the
last better one or the last decay. That is decay on plateau as PyTorch's ReduceLROnPlateau with
``patience=lr_decay_patience``, ``cooldown=0`` and ``threshold=0`` (any higher BLEU is better);
with 0 (the default) the rate decays at every such validation, as OpenNMT-lua's. A decay does
not reset the count towards ``patience``. A validation at a stop between grid points may set a
new ``best_bleu`` (then `best` is saved) but changes nothing else, so that a run stopped and
resumed trains as the same run unbroken would. A dev BLEU of 100 stops the run: no validation
can beat it.
"""

from __future__ import annotations

from dataclasses import dataclass

PERFECT_BLEU = 100.0  # a dev BLEU no validation can beat: the run stops there (out_of_patience,
# with a tolerance: sacrebleu's perfect score is 100 * exp(log(100)), a rounding away from 100)


@dataclass
class Schedule:
    """The validation record of a run and its rules; a checkpoint stores the record
    (``best_bleu``, ``schedule_best``, ``bad_validations``)."""

    valid_every: int              # updates between two validations on the grid
    patience: int                 # grid validations in a row without a better dev BLEU: stop
    lr_decay: float               # the rate's factor on a plateau (1: constant)
    lr_decay_patience: int = 0    # grid validations without a better dev BLEU a decay waits for
    best_bleu: float = -1.0       # the best dev BLEU of any validation (-1: none yet)
    schedule_best: float = -1.0   # the best dev BLEU of the grid's validations
    bad_validations: int = 0      # grid validations since the last better one

    def on_grid(self, step: int) -> bool:
        """Whether update ``step`` is one of every ``valid_every``: the validations that steer
        the decay and the patience."""
        return step % self.valid_every == 0

    def validation_due(self, step: int, stop: str) -> bool:
        """Every ``valid_every`` updates, and at every stop (so ``last`` holds the final
        state)."""
        return self.on_grid(step) or bool(stop)

    def record(self, step: int, score: float) -> tuple[bool, bool]:
        """The dev BLEU ``score`` of the validation at update ``step``: (whether it is the best
        yet, whether the rate decays now: a grid validation without a better one, the
        ``lr_decay_patience`` + 1-th since the last better one or the last decay, with
        ``lr_decay`` below 1)."""
        improved = score > self.best_bleu
        if improved:
            self.best_bleu = score
        decay = False
        if self.on_grid(step):
            if score > self.schedule_best:
                self.schedule_best, self.bad_validations = score, 0
            else:
                self.bad_validations += 1
                # those since the last decay (ReduceLROnPlateau's num_bad_epochs, reset at
                # each decay) are bad_validations mod (lr_decay_patience + 1)
                decay = (self.lr_decay < 1
                         and self.bad_validations % (self.lr_decay_patience + 1) == 0)
        return improved, decay

    def out_of_patience(self, step: int) -> str:
        """Why to stop after the validation at update ``step`` ('' to go on): a dev BLEU of
        100, which no later validation can beat (so `best` would stay as it is), or
        ``patience`` grid validations in a row without a better dev BLEU."""
        if self.best_bleu >= PERFECT_BLEU - 1e-9:
            return f"dev BLEU {PERFECT_BLEU:g}: no validation can be better"
        if self.on_grid(step) and self.bad_validations >= self.patience:
            return f"no better dev BLEU in {self.patience} validations"
        return ""
