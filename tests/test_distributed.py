"""Data-parallel training: the pieces on one process, and 2 ranks under ``mpiexec -n 2`` (the
mpich and mpi4py wheels of the test extra) against one process on the same global batches."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    assert_kept,
    files_of,
    grads64_batches,
    grads64_config,
    hold_run,
    small_corpus,
)
from test_train import args

from minirnnsearch import checkpoint, distributed, model, training
from minirnnsearch.backend import get_backend
from minirnnsearch.data.batching import make_batch

TESTS = Path(__file__).parent
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def mpi_missing() -> str:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install -e \".[test]\" installs it with MPICH)"
    if not MPIEXEC.exists():
        return f"no mpiexec beside {sys.executable} (the mpich wheel installs one)"
    return ""


needs_mpi = pytest.mark.skipif(bool(mpi_missing()), reason=mpi_missing() or "MPI is here")


def test_launched_size_reads_the_launchers_variables():
    assert distributed.launched_size({}) == 1
    assert distributed.launched_size({"PMI_SIZE": "4"}) == 4
    assert distributed.launched_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3


def test_shard_covers_the_batch_in_order():
    items = list(range(7))
    shares = [distributed.shard(items, r, 3) for r in range(3)]
    assert shares == [[0, 1, 2], [3, 4], [5, 6]]
    assert [distributed.shard([9], r, 2) for r in range(2)] == [[9], []]


def test_a_plain_run_never_imports_mpi4py():
    env = {k: v for k, v in os.environ.items()
           if k not in distributed.SIZE_VARIABLES + (distributed.FORCE_VARIABLE,)}
    code = ("import sys; from minirnnsearch import distributed; g = distributed.init(); "
            "print(type(g).__name__, g.size, 'mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["Local", "1", "False"]


def test_one_process_is_loss_and_grads_on_the_whole_batch():
    params = model.init_params(grads64_config(), get_backend("cpu"), seed=3, dtype="float64")
    pairs = grads64_batches()[0]
    loss, grads, n = distributed.loss_and_grads(distributed.Local(), params, grads64_config(),
                                                get_backend("cpu"), pairs)
    b = make_batch([s for s, _ in pairs], [t for _, t in pairs])
    ref_loss, ref = model.loss_and_grads(params, grads64_config(), b)
    assert n == b.n_tokens and float(loss) == float(ref_loss)
    for k in ref:
        np.testing.assert_array_equal(grads[k], ref[k], err_msg=k)


# -- two ranks ---------------------------------------------------------------------------------

def mpiexec(mode, *args, ranks=2):
    """``mpiexec -n ranks python tests/mpi_worker.py mode args``, run to its end."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable,
                           str(TESTS / "mpi_worker.py"), mode, *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def mpirun(mode, *args, ranks=2):
    """``mpiexec``: (exit code, stderr)."""
    p = mpiexec(mode, *args, ranks=ranks)
    return p.returncode, p.stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return small_corpus(tmp_path_factory.mktemp("corpus"), 400, 12, 20, seed=11)


@pytest.fixture(scope="module")
def one_rank(corpus, tmp_path_factory):
    """Parameters of one process after 6 updates (validations, so also checkpoints, at 3 and 6)."""
    out = tmp_path_factory.mktemp("one")
    assert training.main(args(corpus, out, "--max-steps", "6")) == 0
    return checkpoint.load_checkpoint(out, "last")[0]


def assert_same_run(a, b):
    """float32 Adam after a few updates: the ranks sum the gradient in another order, which
    moves nearly every entry by less than 1e-5. Adam's m/sqrt(v) turns rounding into a step
    where a gradient is near zero, so a few entries differ by more, but less than one step
    (lr 3e-3; up to 7e-4 seen, in 1 to 3 entries of the 60,000): a rank training on other data
    or other masks moves most entries by steps."""
    assert set(a) == set(b)
    off = 0
    for k in a:
        np.testing.assert_array_less(np.abs(a[k] - b[k]), 3e-3, err_msg=k)
        off += int(np.sum(np.abs(a[k] - b[k]) > 1e-5))
    assert off <= 1e-3 * sum(v.size for v in a.values())


@needs_mpi
def test_two_ranks_give_one_process_gradients_in_float64_on_numpy_and_strict(tmp_path):
    code, err = mpirun("grads64", tmp_path)
    assert code == 0, err
    ranks = [np.load(tmp_path / f"cpu{r}.npz") for r in range(2)]
    strict = [np.load(tmp_path / f"strict{r}.npz") for r in range(2)]
    for k in ranks[0].files:  # every rank holds the same sum, bit for bit
        np.testing.assert_array_equal(ranks[0][k], ranks[1][k], err_msg=k)
        np.testing.assert_array_equal(strict[0][k], strict[1][k], err_msg=k)
        np.testing.assert_allclose(strict[0][k], ranks[0][k], rtol=1e-12, atol=1e-300,
                                   err_msg=k)  # array_api_strict: the host-copy path
    params = model.init_params(grads64_config(), get_backend("cpu"), seed=3, dtype="float64")
    for i, pairs in enumerate(grads64_batches()):  # the second batch leaves rank 1 empty
        b = make_batch([s for s, _ in pairs], [t for _, t in pairs])
        loss, grads = model.loss_and_grads(params, grads64_config(), b)
        assert int(ranks[0][f"{i}/n"]) == b.n_tokens
        assert abs(float(ranks[0][f"{i}/loss"]) - float(loss)) <= 1e-12 * abs(float(loss))
        for k, g in grads.items():
            err = np.max(np.abs(ranks[0][f"{i}/{k}"] - g)) / max(1e-300, np.max(np.abs(g)))
            assert err < 1e-12, (i, k, err)


@needs_mpi
def test_two_ranks_train_as_one_process(corpus, one_rank, tmp_path):
    code, err = mpirun("train", "--", *args(corpus, tmp_path, "--max-steps", "6"))
    assert code == 0, err
    assert err.count("stopped: --max-steps 6 reached") == 1          # rank 0 speaks, alone
    log = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [3, 6]      # written once, by rank 0
    assert_same_run(one_rank, checkpoint.load_checkpoint(tmp_path, "last")[0])


@needs_mpi
def test_two_ranks_share_out_the_dropout_masks_with_the_pairs(corpus, tmp_path):
    """With dropout, each rank takes its own rows of the global batch's masks: 2 ranks train
    as one process does, and not as one process without dropout."""
    drop = ("--max-steps", "4", "--dropout", "0.3", "--valid-every", "100")
    assert training.main(args(corpus, tmp_path / "one", *drop)) == 0
    code, err = mpirun("train", "--", *args(corpus, tmp_path / "two", *drop))
    assert code == 0, err
    one = checkpoint.load_checkpoint(tmp_path / "one", "last")[0]
    assert_same_run(one, checkpoint.load_checkpoint(tmp_path / "two", "last")[0])
    assert training.main(args(corpus, tmp_path / "plain", "--max-steps", "4",
                              "--valid-every", "100")) == 0
    plain = checkpoint.load_checkpoint(tmp_path / "plain", "last")[0]
    assert not np.allclose(one["W_o"], plain["W_o"], rtol=0, atol=1e-5)


@needs_mpi
def test_two_ranks_decay_the_rate_as_rank_0s_validations_say(corpus, tmp_path):
    """--lr-decay with a validation at every update: only rank 0 validates, and both ranks
    train with the rate its dev BLEU decided (a rank with its own rate would differ, and the
    ranks' check after each validation would stop the run)."""
    # appendix B.1's small weights: the dev BLEU of the first updates stays put, so it decays
    decay = ("--max-steps", "4", "--valid-every", "1", "--valid-size", "3", "--lr-decay", "0.5",
             "--init", "paper")
    assert training.main(args(corpus, tmp_path / "one", *decay)) == 0
    code, err = mpirun("train", "--", *args(corpus, tmp_path / "two", *decay))
    assert code == 0, err
    one = checkpoint.load_checkpoint(tmp_path / "one", "last")
    two = checkpoint.load_checkpoint(tmp_path / "two", "last")
    assert one[2]["lr_now"] == two[2]["lr_now"] < one[2]["lr"]  # it did decay
    assert_same_run(one[0], two[0])


@needs_mpi
def test_resume_across_rank_counts(corpus, one_rank, tmp_path):
    # one process for 3 updates, then two ranks to 6
    assert training.main(args(corpus, tmp_path, "--max-steps", "3")) == 0
    code, err = mpirun("train", "--", *args(corpus, tmp_path, "--max-steps", "6", "--resume"))
    assert code == 0, err
    assert checkpoint.load_checkpoint(tmp_path, "last")[2]["step"] == 6
    assert_same_run(one_rank, checkpoint.load_checkpoint(tmp_path, "last")[0])


@needs_mpi
def test_sigterm_on_one_rank_stops_both_and_one_process_resumes(corpus, one_rank, tmp_path):
    code, err = mpirun("sigterm", 1, 4, "--", *args(corpus, tmp_path, "--max-steps", "6"))
    assert code == 130, err
    assert f"interrupted: saved checkpoint {tmp_path / 'last'} at step 4" in err
    assert training.main(args(corpus, tmp_path, "--max-steps", "6", "--resume")) == 0
    assert_same_run(one_rank, checkpoint.load_checkpoint(tmp_path, "last")[0])


@needs_mpi
def test_nan_on_one_rank_stops_every_rank_and_saves_nothing(corpus, tmp_path):
    code, err = mpirun("nan", 1, 5, "--", *args(corpus, tmp_path, "--max-steps", "9"))
    assert code == 2, err
    assert err.count("error: training loss became nan by step 6") == 1, err
    assert checkpoint.load_checkpoint(tmp_path, "last")[2]["step"] == 3


@needs_mpi
@pytest.mark.parametrize(("mode", "said"), [
    ("fail", "RuntimeError: injected failure"),  # an exception inside the step
    ("exit", "SystemExit: 3"),  # sys.exit on one rank: the others used to wait for it forever
])
def test_a_failing_rank_ends_the_run_and_keeps_the_checkpoints(corpus, tmp_path, mode, said):
    """Rank 1 fails at its 5th update: every rank ends (MPI_Abort; the subprocess timeout would
    catch a hang), the last line names the rank and why (a bug keeps its traceback above it;
    MPI's own report of the abort is not added), and the checkpoints of step 3 load."""
    code, err = mpirun(mode, 1, 5, "--", *args(corpus, tmp_path, "--max-steps", "9"))
    assert code != 0
    assert err.strip().splitlines()[-1] == f"error on rank 1 of 2: {said}; stopping every rank"
    assert "MPI_Abort" not in err
    assert checkpoint.load_checkpoint(tmp_path, "last")[2]["step"] == 3
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


@needs_mpi
def test_a_rank_killed_outright_ends_the_run_and_is_named(corpus, tmp_path):
    """kill -9 of rank 1 (it can say nothing): mpiexec ends every rank and names the killed
    process id (on stdout), which rank 0's first line maps to rank 1; the checkpoints of step
    3 load."""
    p = mpiexec("kill", 1, 5, "--", *args(corpus, tmp_path, "--max-steps", "9"))
    assert p.returncode != 0
    pids = re.search(r"distributed: 2 ranks, process ids ([0-9]+) \(rank 0\), ([0-9]+) "
                     r"\(rank 1\)", p.stderr)
    assert pids is not None, p.stderr
    assert f"PID {pids[2]} " in p.stdout and f"PID {pids[1]} " not in p.stdout, p.stdout
    assert checkpoint.load_checkpoint(tmp_path, "last")[2]["step"] == 3


@needs_mpi
def test_rank_0_unable_to_write_ends_every_rank_in_one_line(corpus, tmp_path):
    """Rank 0 runs out of room (a file-size limit: EFBIG, as a full disk gives ENOSPC) while
    the other ranks go on to the next collective: all end at once, with one line naming rank 0,
    the file and the cause and no traceback; the checkpoints of step 3 are as they were, the
    log whole, and no temporary is left."""
    assert training.main(args(corpus, tmp_path, "--max-steps", "3")) == 0
    before = files_of(tmp_path)
    code, err = mpirun("full", 0, 2, "--", *args(corpus, tmp_path, "--max-steps", "9",
                                                  "--resume"))
    assert code != 0
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors == err.strip().splitlines()[-1:], err
    assert re.fullmatch(rf"error on rank 0 of 2: cannot write checkpoint "
                        rf"{re.escape(str(tmp_path))}/(best|last): File too large; stopping "
                        "every rank", errors[0])
    assert "Traceback" not in err and "MPI_Abort" not in err
    assert_kept(tmp_path, before)


@needs_mpi
def test_ranks_that_start_from_different_states_refuse(corpus, tmp_path):
    code, err = mpirun("differ", 1, 0, "--", *args(corpus, tmp_path, "--max-steps", "3"))
    assert code == 2, err
    assert err.strip().splitlines()[-1] == ("error: the parameters, optimiser state and position "
                                            "of rank(s) 1 differ from rank 0's")


@needs_mpi
def test_a_directory_in_use_refuses_two_ranks_in_one_line_from_rank_0(corpus, tmp_path):
    """Rank 0 holds the run directory for the ranks: held by another process, it stops them all
    before anything is written, naming that process."""
    holder = hold_run(tmp_path)
    try:
        code, err = mpirun("train", "--", *args(corpus, tmp_path, "--max-steps", "3"))
    finally:
        holder.kill()
        holder.wait()
    assert code == 2, err
    first, *rest = err.strip().splitlines()
    assert first.startswith("distributed: 2 ranks, process ids ")
    assert len(rest) == 1 and rest[0].startswith(
        f"error: rank 0: {tmp_path} is in use by process {holder.pid} ({sys.executable} -c ")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]  # the holder's, left


@needs_mpi
def test_bad_input_on_every_rank_is_one_line(corpus, tmp_path):
    code, err = mpirun("train", "--", *args(corpus, tmp_path, "--resume"))
    assert code == 2
    first, *rest = err.strip().splitlines()
    assert first.startswith("distributed: 2 ranks, process ids ")
    assert rest == [f"error: {tmp_path}: --resume, but there is no checkpoint 'last' in this "
                    "run directory"]


@needs_mpi
def test_bench_ranks_reports_total_and_per_rank_tokens():
    p = subprocess.run([sys.executable, "-m", "minirnnsearch.bench", "--ranks", "2", "--threads",
                        "1", "--device", "cpu", "--batch", "4", "--src-len", "3", "--tgt-len",
                        "3", "--emb", "4", "--hidden", "4", "--align", "4", "--maxout", "2",
                        "--vocab", "20", "--steps", "2", "--warmup", "1"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    (line,) = p.stdout.splitlines()  # rank 0 alone prints
    r = json.loads(line)
    assert (r["ranks"], r["threads"], r["batch"]) == (2, "1", 4)
    assert r["target_tokens_per_s"] == pytest.approx(2 * r["target_tokens_per_s_per_rank"],
                                                     abs=0.2)  # bookkeeping, not a speed
    assert {"allreduce_ms", "agree_stop_us"} <= set(r)  # reported; their values are not tested
    cfg = model.Config(src_vocab=20, tgt_vocab=20, emb=4, hidden=4, align=4, maxout=2)
    sizes = [int(np.prod(s)) for s in model.param_shapes(cfg).values()]
    assert r["gradient_mb"] == round(4 * sum(sizes) / 2**20, 2)  # float32, what is all-reduced
