"""The training loop: one run's state (parameters, optimiser, position in the data, schedule)
and the order of events, update by update (``Trainer.train``).

Resuming continues exactly: the batches of an epoch are a function of (seed, epoch), and the
checkpoint stores the position in the epoch and the optimiser state, so step n after a resume
equals step n of an unbroken run bit for bit. Ctrl-C and SIGTERM both save ``last`` and say how
to resume. A failure of the system under the run (a full disk, a run directory that is not
writable) ends it with one line naming the file (``oserrors``), and the checkpoints and log on
disk stay whole.
"""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sacrebleu
from tqdm import tqdm

from . import decode, distributed, model
from .backend import get_backend, to_host
from .checkpoint import CheckpointError, checkpoint_exists, load_checkpoint, save_checkpoint
from .data.batching import epoch_batches, padding_share
from .data.vocab import Vocab
from .optim import clip_grad_norm, make_optimizer
from .oserrors import append_line
from .rundir import LOG, agree_with_last, prepare_out
from .schedule import Schedule
from .settings import (
    DATA_FILES,
    RECORDED_LATER,
    Settings,
    TrainingError,
    corpus_defaults,
    refuse_changes,
    run_settings,
)
from .traindata import dev_loss, load_corpus

LOG_EVERY = 20  # updates between two reads of the training loss (each read waits for a GPU)


class Terminated(KeyboardInterrupt):
    """A signal other than Ctrl-C's (SIGTERM) taking Ctrl-C's path: save ``last``, say how to
    resume, exit with status 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Result:
    """How a run ended by a rule (not by Ctrl-C or an error)."""

    updates: int        # the run's updates in all, those before a resume included
    epochs: float       # epochs done, a fraction for the last
    best_bleu: float    # the best dev BLEU of any validation (-1: none)
    seconds: float      # this run's time, from its first update
    stop: str           # why it stopped, e.g. "--max-steps 30 reached"
    settings: Settings  # the settings it trained with (a resumed run's kept ones, lr a number)


@dataclass
class Meter:
    """Training loss and throughput between two log lines, the training loss since the last
    validation, and tokens/s over this run's steps. The loss is summed on the device and read
    once per log interval (a read waits for a GPU)."""

    clock: Callable[[], float]
    since: float                # when the last log line was
    loss_sum: Any = 0.0         # device scalar: the summed loss of the steps since the last log
    steps: int = 0
    tokens: int = 0             # target tokens since the last log
    run_tokens: int = 0         # target tokens and seconds in steps, this run
    step_time: float = 0.0
    interval_sum: float = 0.0   # the summed loss and the steps of the reads since the last
    interval_steps: int = 0     # validation (or this run's start)

    def add(self, loss: Any, n_tokens: int, seconds: float) -> None:
        self.loss_sum = self.loss_sum + loss
        self.steps += 1
        self.tokens += n_tokens
        self.run_tokens += n_tokens
        self.step_time += seconds

    def read(self) -> tuple[float, float]:
        """Mean loss per step and tokens/s since the last read, then start over; the read's
        summed loss and steps go to the validation interval's (``interval_loss``)."""
        total = float(to_host(self.loss_sum))
        self.interval_sum += total
        self.interval_steps += self.steps
        loss = total / self.steps
        now = self.clock()
        tokens_per_s = self.tokens / (now - self.since)
        self.loss_sum, self.steps, self.tokens, self.since = 0.0, 0, 0, now
        return loss, tokens_per_s

    def interval_loss(self) -> float:
        """Mean loss per step over the reads since the last call (the validation interval),
        then start over: the training loss a validation's record gives beside the dev loss,
        over all of the interval's updates, not only the last read's few."""
        loss = self.interval_sum / self.interval_steps
        self.interval_sum, self.interval_steps = 0.0, 0
        return loss

    def finite(self) -> bool:
        """Whether the loss summed since the last read is finite (a read waits for a GPU)."""
        return not self.steps or math.isfinite(float(to_host(self.loss_sum)))

    @property
    def tokens_per_s(self) -> float:
        return self.run_tokens / self.step_time


class Trainer:
    """The state of one run: parameters, optimiser, position in the data, validation record."""

    def __init__(self, settings: Settings, group: distributed.Local | None = None,
                 clock: Callable[[], float] = time.perf_counter,
                 given: Collection[str] = ()) -> None:
        """A new run of ``settings``, or with ``settings.resume`` the run in ``settings.out``
        continued with the run's kept settings (``self.settings``), and TrainingError if a
        field in ``given`` (those the caller set) differs from them."""
        self.clock = clock  # seconds; a test drives --max-time with its own
        self.group = group or distributed.Local()  # ranks of a data-parallel run (MPI)
        self.out = Path(settings.out)
        self.backend = get_backend(settings.device)
        if settings.resume:
            params, opt_state, meta = self.load_last()
            self.settings = self.kept(settings, given, meta)
            vocabs = (Vocab.from_dict(meta["src_vocab"]), Vocab.from_dict(meta["tgt_vocab"]))
            self.corpus, self.src_vocab, self.tgt_vocab = load_corpus(
                self.settings, vocabs, meta.get("subword"))
            self.restore(params, opt_state, meta)
        else:
            self.settings = settings
            self.corpus, self.src_vocab, self.tgt_vocab = load_corpus(settings, None)
            self.start()
        s = self.settings
        self.lengths = [(len(src), len(tgt)) for src, tgt in self.corpus.train]
        self.order = self.epoch_order()
        if self.group.is_root:
            size = (f"up to {s.batch_tokens} tokens a side" if s.batch_tokens
                    else f"up to {s.batch_size} pairs")
            print(f"batches: {self.epoch_size} an epoch of {size}, "
                  f"{padding_share(self.lengths, self.order):.1%} of their cells padding "
                  f"(--sort-pool {s.sort_pool})", file=sys.stderr)
        self.signature_shown = False
        if settings.resume and self.group.is_root:
            agree_with_last(self.out, self.step, self.schedule.best_bleu,
                            lambda: self.save("best"))

    def load_last(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(parameters, optimiser state, meta) of checkpoint `last`, the one a resume takes."""
        if not checkpoint_exists(self.out, "last"):
            raise CheckpointError(f"{self.out}: --resume, but there is no checkpoint 'last' "
                                  "in this run directory")
        return load_checkpoint(self.out, "last")

    def kept(self, settings: Settings, given: Collection[str], meta: dict[str, Any]
             ) -> Settings:
        """``settings`` with the kept fields of the run whose meta is ``meta``; TrainingError
        if one in ``given`` differs. What the run does not record stays unrecorded
        (``self.unrecorded``): the caller's value is not the run's, and a later resume would be
        checked against it."""
        run = run_settings(meta)
        refuse_changes(settings, given, run, self.out)
        self.unrecorded = [k for k in RECORDED_LATER if k not in run]
        return dataclasses.replace(settings, **run)

    def start(self) -> None:
        """A new run: the model initialised from the seed, the optimiser fresh, step 0."""
        s = self.settings = corpus_defaults(self.settings)
        sizes = {k: getattr(s, k) for k in ("emb", "hidden", "align", "maxout")
                 if getattr(s, k) is not None}
        self.cfg = model.Config.from_preset(
            s.preset, src_vocab=len(self.src_vocab), tgt_vocab=len(self.tgt_vocab),
            variant=s.variant, band=s.band, init=s.init, **sizes)
        self.params = model.init_params(self.cfg, self.backend, s.seed)
        self.opt = make_optimizer(s.optimizer, self.params, s.lr)
        # recorded as a number, the optimiser's default included
        self.settings = dataclasses.replace(s, lr=self.opt.lr)
        self.step, self.epoch, self.pos = 0, 0, 0
        self.schedule = Schedule(s.valid_every, s.patience, s.lr_decay, s.lr_decay_patience)
        self.unrecorded: list[str] = []

    def restore(self, params: dict[str, Any], opt_state: dict[str, Any],
                meta: dict[str, Any]) -> None:
        """A resumed run: the model, optimiser, position and schedule of checkpoint `last`."""
        self.cfg = model.Config.from_dict(meta["config"])
        expected = model.param_shapes(self.cfg)
        if {k: v.shape for k, v in params.items()} != expected:
            raise CheckpointError(f"checkpoint {self.out / 'last'}: parameters do not "
                                  "match the configuration stored with them")
        self.params = {k: self.backend.asarray(params[k]) for k in expected}
        self.opt = make_optimizer(self.settings.optimizer, self.params, self.settings.lr)
        self.opt.load_state_dict({k: self.backend.asarray(v) for k, v in opt_state.items()})
        self.opt.lr = meta.get("lr_now", self.opt.lr)  # as --lr-decay left it
        self.step, self.epoch, self.pos = meta["step"], meta["epoch"], meta["pos"]
        s = self.settings
        self.schedule = Schedule(s.valid_every, s.patience, s.lr_decay, s.lr_decay_patience,
                                 best_bleu=meta["best_bleu"],
                                 # older runs: one best
                                 schedule_best=meta.get("schedule_best", meta["best_bleu"]),
                                 bad_validations=meta["bad_validations"])
        print(f"resuming {self.out} at step {self.step} (epoch {self.epoch + 1}, "
              f"batch {self.pos})", file=sys.stderr)

    # -- checkpoints ---------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """What a checkpoint records of the run: its configuration, vocabularies, position,
        schedule and settings (those a resumed run's checkpoint lacked left out)."""
        s, sc = self.settings, self.schedule
        meta = dict(config=self.cfg.to_dict(), src_vocab=self.src_vocab.to_dict(),
                    tgt_vocab=self.tgt_vocab.to_dict(), step=self.step, epoch=self.epoch,
                    pos=self.pos, best_bleu=sc.best_bleu, schedule_best=sc.schedule_best,
                    bad_validations=sc.bad_validations,
                    optimizer=s.optimizer, lr=s.lr, lr_now=self.opt.lr, lr_decay=s.lr_decay,
                    lr_decay_patience=s.lr_decay_patience,
                    seed=s.seed, batch_size=s.batch_size, batch_tokens=s.batch_tokens,
                    sort_pool=s.sort_pool, max_len=s.max_len,
                    pair=None if s.train_src else s.pair, subword=self.corpus.subword,
                    dropout=s.dropout, preset=s.preset, vocab_size=s.vocab_size,
                    label_smoothing=s.label_smoothing,
                    valid_size=s.valid_size, clip=s.clip,
                    **{k: str(Path(getattr(s, k)).resolve()) if s.train_src else None
                       for k in DATA_FILES})
        for k in self.unrecorded:
            del meta[k]
        return meta

    def save(self, name: str) -> None:
        if self.group.is_root:
            save_checkpoint(self.out, name, self.params, self.opt.state_dict(), self.meta())

    def fingerprint(self) -> str:
        """The state every rank must share: parameters, optimiser state, position."""
        return distributed.fingerprint({**self.params, **self.opt.state}, self.opt.t,
                                       self.opt.lr, self.step, self.epoch, self.pos)

    # -- validation ----------------------------------------------------------------------------

    def validate(self, train_loss: float, tokens_per_s: float, elapsed: float) -> bool:
        """Dev BLEU (greedy) and dev loss, one line of log.jsonl with ``valid_seconds``, the
        validation's own time (``elapsed`` is the time before it); whether the dev BLEU is the
        best yet (then ``train`` saves `best`, after `last`).

        The dev BLEU goes to the schedule (``Schedule.record``), which may decay the rate:
        lr <- lr * --lr-decay; Adam's moments stay as they are, only the step size shrinks."""
        t0 = self.clock()
        packed = model.pack_params(self.params)
        hyps = decode.decode_sentences(packed, self.cfg, self.backend, self.corpus.dev_src,
                                       self.settings.batch_size)
        detok = [self.corpus.tgt_seg.decode(self.tgt_vocab.decode(h[0].tokens)) for h in hyps]
        bleu = sacrebleu.BLEU(tokenize="13a")
        score = bleu.corpus_score(detok, [self.corpus.dev_ref]).score
        if not self.signature_shown:
            print(f"sacrebleu signature: {bleu.get_signature()}", file=sys.stderr)
            self.signature_shown = True
        dloss = dev_loss(self.params, self.cfg, self.backend, self.corpus,
                         self.settings.batch_size)
        record = dict(step=self.step, epoch=self.epoch + 1, loss=train_loss, dev_loss=dloss,
                      dev_bleu=score, lr=self.opt.lr, tokens_per_s=tokens_per_s, elapsed=elapsed,
                      valid_seconds=self.clock() - t0, valid_every=self.settings.valid_every,
                      patience=self.settings.patience)
        append_line(self.out / LOG, json.dumps(record))  # whole or not at all
        improved, decay = self.schedule.record(self.step, score)
        if decay:
            self.opt.lr *= self.settings.lr_decay
            tqdm.write(f"no better dev BLEU: learning rate now {self.opt.lr:.3g}",
                       file=sys.stderr)
        k = min(range(len(detok)), key=lambda i: abs(len(detok[i].split()) - 12))
        tqdm.write(f"step {self.step}: dev loss {record['dev_loss']:.3f}, dev BLEU {score:.2f}"
                   f"{' (best)' if improved else ''}, {tokens_per_s:.0f} tokens/s\n"
                   f"  sample: {detok[k]}\n  ref:    {self.corpus.dev_ref[k]}", file=sys.stderr)
        return improved

    # -- the loop ------------------------------------------------------------------------------

    def train(self) -> Result:
        """Train until a stop rule says so; the order of events is here, each rule below."""
        prepare_out(self.out)
        start = self.clock()
        meter = Meter(self.clock, since=start)
        stop = ""
        bar = self.progress_bar()
        self.group.check_same("the parameters, optimiser state and position", self.fingerprint)
        try:
            for batch in self.batches():
                t0 = self.clock()
                meter.add(*self.train_step(batch), self.clock() - t0)
                bar.update(1)
                elapsed = self.clock() - start
                # rank 0's clock decides; a Ctrl-C on any rank interrupts them all here
                stop = self.group.agree_stop(self.limit_reached(elapsed))
                validating = self.schedule.validation_due(self.step, stop)
                if validating or self.log_due():
                    self.log(meter, bar)  # the NaN check, before anything is saved
                if validating:
                    train_loss = meter.interval_loss()  # every rank starts the next interval
                    # rank 0 validates: its log line, then `last`, then `best` if better, in
                    # this order (``agree_with_last`` says why)
                    better = (self.group.is_root
                              and self.validate(train_loss, meter.tokens_per_s, elapsed))
                    self.save("last")
                    if better:
                        self.save("best")
                    # rank 0 keeps the validation record, so its patience decides
                    out_of_patience = self.schedule.out_of_patience(self.step)
                    stop = self.group.agree_stop(out_of_patience or stop)
                    self.opt.lr = self.group.from_root(self.opt.lr)  # as rank 0's dev BLEU says
                    self.group.check_same("the parameters", self.fingerprint)
                if stop:
                    break
            else:
                stop = f"{self.settings.epochs} epochs done"
        except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, or either on any rank
            bar.close()
            self.save_interrupted(e, meter)
            raise
        bar.close()
        return self.finish(stop, self.clock() - start)

    def progress_bar(self) -> tqdm:
        """Updates done of the most this run will reach: --max-steps or the end of --epochs
        (estimated from this epoch's size where --batch-tokens with --sort-pool makes it vary)."""
        to_the_end = max(self.step, self.step - self.pos
                         + (self.settings.epochs - self.epoch) * self.epoch_size)
        total = min(self.settings.max_steps or to_the_end, to_the_end)
        return tqdm(total=total, initial=self.step, disable=self.settings.quiet, unit="step",
                    dynamic_ncols=True, file=sys.stderr)

    def epoch_order(self) -> list[list[int]]:
        """This epoch's batches (pair indices), a function of (seed, epoch) only."""
        s = self.settings
        return epoch_batches(self.lengths, s.batch_size, s.seed, self.epoch, s.sort_pool,
                             s.batch_tokens)

    @property
    def epoch_size(self) -> int:
        """Batches in this epoch (with --batch-tokens and --sort-pool, it varies by epoch)."""
        return len(self.order)

    def batches(self) -> Iterator[list[int]]:
        """The batches (pair indices) from the position in the data to the end of --epochs.
        ``train_step`` moves the position; the end of an epoch moves on to the next one."""
        while self.epoch < self.settings.epochs:
            while self.pos < self.epoch_size:
                yield self.order[self.pos]
            self.epoch, self.pos = self.epoch + 1, 0
            self.order = self.epoch_order()

    def train_step(self, batch: list[int]) -> tuple[Any, int]:
        """One update on the pairs ``batch``: the loss (on the device) and its target tokens.

        Each rank its share of the pairs; gradients summed over ranks, weighted by tokens, then
        rescaled to L2 norm at most --clip (appendix B.2). Dropout masks come from (seed, step):
        the same on a resume and on every rank."""
        pairs = [self.corpus.train[k] for k in batch]
        masks = model.dropout_masks(self.cfg, len(pairs), self.settings.dropout,
                                    np.random.default_rng([self.settings.seed, self.step]),
                                    self.backend)
        loss, grads, n_tokens = distributed.loss_and_grads(
            self.group, self.params, self.cfg, self.backend, pairs, masks,
            self.settings.label_smoothing)
        clip_grad_norm(grads, self.settings.clip)
        self.opt.step(self.params, grads)
        self.step += 1
        self.pos += 1
        return loss, n_tokens

    def limit_reached(self, elapsed: float) -> str:
        """Why this run stops after this step ('' if it goes on): --max-steps, --max-time
        (``elapsed`` seconds of this run), or the last batch of the last epoch."""
        s = self.settings
        if s.max_steps is not None and self.step >= s.max_steps:
            return f"--max-steps {s.max_steps} reached"
        if s.max_time is not None and elapsed >= 60 * s.max_time:
            return f"--max-time {s.max_time:g} minutes reached"
        if self.pos == self.epoch_size and self.epoch + 1 >= s.epochs:
            return f"{s.epochs} epochs done"  # validated and saved like any stop
        return ""

    def log_due(self) -> bool:
        """The loss is read from the device every ``LOG_EVERY`` updates and at an epoch's end."""
        return self.step % LOG_EVERY == 0 or self.pos == self.epoch_size

    def log(self, meter: Meter, bar: tqdm) -> None:
        """The mean training loss since the last log, shown on the bar; TrainingError if it is
        not finite (nothing saved, so the checkpoints on disk stay good)."""
        loss, tokens_per_s = meter.read()
        if not math.isfinite(loss):
            raise TrainingError(f"training loss became {loss} by step {self.step}: stopped "
                                f"without saving; the checkpoints in {self.out} are untouched "
                                "(a new run with a lower --lr or --clip may go further)")
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:.0f}")

    def save_interrupted(self, e: KeyboardInterrupt, meter: Meter) -> None:
        """Ctrl-C or SIGTERM: save ``last`` (unless the loss since the last log is not finite)
        and say how to resume."""
        why = f"stopped by {e}" if isinstance(e, Terminated) else "interrupted"
        if not meter.finite():
            print(f"{why}; the loss was not finite, so nothing was saved in {self.out}",
                  file=sys.stderr)
        else:
            self.save("last")
            print(f"{why}: saved checkpoint {self.out / 'last'} at step {self.step}; "
                  f"continue with --resume --out {self.out}", file=sys.stderr)

    def finish(self, stop: str, elapsed: float) -> Result:
        """The end of a run stopped by a rule (``stop`` says which), ``elapsed`` seconds long."""
        best = self.schedule.best_bleu
        print(f"stopped: {stop}. {self.step} updates, {elapsed / 60:.1f} minutes.\n"
              f"best dev BLEU {best:.2f}: checkpoint {self.out / 'best'}\n"
              f"translate with: python translate.py --model {self.out} < input.txt",
              file=sys.stderr)
        return Result(updates=self.step, epochs=self.epoch + self.pos / self.epoch_size,
                      best_bleu=best, seconds=elapsed, stop=stop, settings=self.settings)
