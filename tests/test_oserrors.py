"""Failures of the operating system under a run (``oserrors``): a full disk, a file-size limit, a
read-only directory, a file that vanishes between check and use, a full stdout. Each ends the
command with exit status 1 and one line naming the file, the operation and the cause, never a
traceback; the last good checkpoint is byte for byte as before and loads, no temporary is left,
and every line of log.jsonl is whole JSON.

The tools: a file-size limit (RLIMIT_FSIZE) in a child process, which the kernel enforces even
for root and which fails a write with EFBIG as a full disk fails it with ENOSPC (Python ignores
SIGXFSZ); /dev/full, whose writes fail with ENOSPC; a directory made read-only with chmod, or,
for root (whom permissions do not stop), with the calls that create files refusing as the kernel
would; and mocks at the lowest level (``np.savez``, ``open``) for errors no test can cause.
"""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import assert_kept, files_of, small_corpus
from test_train import args

from minirnnsearch import checkpoint, model, oserrors, story, training, translation
from minirnnsearch.data import corpus as data_corpus
from minirnnsearch.data import io as data_io
from minirnnsearch.data import real

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
TOO_LARGE = os.strerror(errno.EFBIG)  # "File too large"
DENIED = os.strerror(errno.EACCES)  # "Permission denied"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return small_corpus(tmp_path_factory.mktemp("corpus"), 400, 12, 20, seed=11)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A run of 3 updates, validated once: best, last and one log line."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert training.main(args(corpus, out, "--max-steps", "3")) == 0
    return out


@pytest.fixture
def run(trained, tmp_path):
    """A copy of ``trained`` to fail in."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def error_line(err: str) -> str:
    """The one error line of a failed command's stderr: its last line, the only one that
    starts with 'error', with no traceback and no complaint from Python on the way out."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    return errors[0]


def limited(module: str, argv: list, limit: int, **kw) -> subprocess.CompletedProcess:
    """``main(argv)`` of ``module`` in a child process that cannot write a file beyond
    ``limit`` bytes."""
    code = ("import resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
            f"from {module} import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, **kw)


def temporaries(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.endswith(".tmp")]


def refuse_new_files(monkeypatch, directory: Path) -> None:
    """Make ``directory`` read-only: chmod, or for root, whom permissions do not stop, the
    calls that create files or directories refusing under it as the kernel would (EACCES);
    files already there stay writable, as in a read-only directory."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return

    def inside(path) -> bool:
        return Path(os.path.abspath(path)).is_relative_to(directory.resolve())

    def refused(path):
        return PermissionError(errno.EACCES, DENIED, str(path))

    real_open, real_os_open, real_mkdir = open, os.open, os.mkdir

    def opening(file, mode="r", *a, **kw):
        if (isinstance(file, (str, Path)) and set(mode) & set("wax") and inside(file)
                and not os.path.exists(file)):
            raise refused(file)
        return real_open(file, mode, *a, **kw)

    def os_opening(path, flags, *a, **kw):
        if flags & os.O_CREAT and inside(path) and not os.path.exists(path):
            raise refused(path)
        return real_os_open(path, flags, *a, **kw)

    def making(path, *a, **kw):
        if inside(path):
            raise refused(path)
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr("builtins.open", opening)
    monkeypatch.setattr(os, "open", os_opening)
    monkeypatch.setattr(os, "mkdir", making)


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    d = tmp_path / "read-only"
    d.mkdir()
    refuse_new_files(monkeypatch, d)
    yield d
    d.chmod(0o755)


# -- the pieces --------------------------------------------------------------------------------

def no_space():
    raise OSError(errno.ENOSPC, NO_SPACE)


def test_describe_names_the_operation_the_file_and_the_cause(tmp_path):
    with pytest.raises(OSError) as e, oserrors.doing("write", "runs/x/last.npz"):
        no_space()
    assert oserrors.describe(e.value) == f"cannot write runs/x/last.npz: {NO_SPACE}"
    with pytest.raises(OSError) as e, oserrors.doing("write", "outer"):
        with oserrors.doing("read", tmp_path / "gone"):  # the innermost knows best
            (tmp_path / "gone").read_bytes()
    assert oserrors.describe(e.value) == (f"cannot read {tmp_path / 'gone'}: "
                                          f"{os.strerror(errno.ENOENT)}")
    assert type(e.value) is FileNotFoundError  # marked, not replaced
    rename = OSError(errno.EXDEV, os.strerror(errno.EXDEV), "a", None, "b")
    assert oserrors.describe(rename) == f"a -> b: {os.strerror(errno.EXDEV)}"


@pytest.mark.parametrize(("interrupt", "said"), [
    (KeyboardInterrupt(), "interrupted"),
    (training.Terminated(signal.SIGTERM), "stopped by SIGTERM"),
])
def test_describe_says_when_the_failure_came_while_stopping(interrupt, said):
    try:
        try:
            raise interrupt
        except KeyboardInterrupt:
            with oserrors.doing("write", "last.npz"):
                no_space()
    except OSError as e:
        assert oserrors.describe(e) == f"{said}, but cannot write last.npz: {NO_SPACE}"


def test_a_line_is_appended_whole_or_not_at_all_when_the_disk_fills(tmp_path):
    """Room for 20 more bytes: the kernel takes the first 20 of the line (a short write), the
    rest fails with EFBIG, and the file is cut back to its size before."""
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"step": 3}\n')
    limit = log.stat().st_size + 20
    code = ("import resource, sys; from minirnnsearch.oserrors import append_line; "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
            "append_line(sys.argv[1], '{\"step\": 6, \"pad\": \"' + 'x' * 100 + '\"}')")
    p = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True)
    assert p.returncode != 0 and f"[Errno {errno.EFBIG}] {TOO_LARGE}" in p.stderr
    assert log.read_bytes() == b'{"step": 3}\n'
    oserrors.append_line(log, '{"step": 6}')
    assert log.read_bytes() == b'{"step": 3}\n{"step": 6}\n'


def test_write_atomic_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old\n")
    code = ("import resource, sys; from minirnnsearch.oserrors import write_atomic; "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000)); "
            "write_atomic(sys.argv[1], b'new\\n' * 1000)")
    p = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert p.returncode != 0 and TOO_LARGE in p.stderr
    assert out.read_text() == "old\n" and temporaries(tmp_path) == []


def test_write_atomic_writes_through_a_link_in_place(tmp_path):
    """A symbolic link (like /dev/stdout) or a device is written, not replaced by a file."""
    (tmp_path / "target").write_text("old\n")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    oserrors.write_atomic(tmp_path / "link", b"new\n")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target").read_text() == "new\n"


# -- train.py ----------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["checkpoint", "log"])
def test_a_full_disk_under_training_is_one_line_and_keeps_the_run(corpus, run, where):
    """The real thing in a child process: room for the log line but not the checkpoint
    (saved after it), or for neither (a short write of the log line, then EFBIG)."""
    before = files_of(run)
    limit = 100_000 if where == "checkpoint" else len(before["log.jsonl"]) + 40
    p = limited("minirnnsearch.training", args(corpus, run, "--max-steps", "6", "--resume"),
                limit)
    assert p.returncode == oserrors.STATUS, p.stderr
    line = error_line(p.stderr)
    if where == "checkpoint":
        assert re.fullmatch(rf"error: cannot write checkpoint {re.escape(str(run))}/"
                            f"(best|last): {TOO_LARGE}", line)
    else:
        assert line == f"error: cannot append to {run / 'log.jsonl'}: {TOO_LARGE}"
        assert files_of(run)["log.jsonl"] == before["log.jsonl"]
    assert_kept(run, before)


def failing_savez(monkeypatch, e: OSError) -> None:
    """``np.savez`` that writes part of the archive and then fails with ``e``."""
    def savez(f, **arrays):
        f.write(b"PK\x03\x04" + bytes(5000))
        raise e

    monkeypatch.setattr(checkpoint.np, "savez", savez)


def refusing_open(monkeypatch, e: OSError) -> None:
    """Files created for writing by ``oserrors`` (checkpoint temporaries) refused with ``e``."""
    def refused(*args, **kwargs):
        raise e

    monkeypatch.setattr(oserrors, "open", refused, raising=False)


@pytest.mark.parametrize(("how", "code"), [
    (failing_savez, errno.ENOSPC),    # the disk fills half-way through the npz
    (refusing_open, errno.EDQUOT),    # over quota
    (refusing_open, errno.EROFS),     # the file system went read-only
    (refusing_open, errno.EACCES),    # permissions changed under the run
])
def test_a_checkpoint_that_cannot_be_written(corpus, run, capsys, monkeypatch, how, code):
    before = files_of(run)
    how(monkeypatch, OSError(code, os.strerror(code)))
    assert training.main(args(corpus, run, "--max-steps", "6", "--resume")) == oserrors.STATUS
    assert re.fullmatch(rf"error: cannot write checkpoint {re.escape(str(run))}/(best|last): "
                        f"{os.strerror(code)}", error_line(capsys.readouterr().err))
    assert_kept(run, before)


def test_a_log_line_that_cannot_be_written_whole(corpus, run, capsys, monkeypatch):
    """os.write takes 10 bytes of the log line, then the disk is full: the line is taken back
    and no checkpoint is written after it."""
    before, real_write = files_of(run), os.write

    def write(fd, data):
        if bytes(data).startswith(b'{"step": 6'):
            real_write(fd, bytes(data)[:10])
            monkeypatch.setattr(os, "write", lambda fd, data: no_space())
            return 10
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    assert training.main(args(corpus, run, "--max-steps", "6", "--resume")) == oserrors.STATUS
    monkeypatch.undo()
    assert error_line(capsys.readouterr().err) == (f"error: cannot append to "
                                                   f"{run / 'log.jsonl'}: {NO_SPACE}")
    assert files_of(run) == before


@pytest.mark.parametrize(("stop", "said"), [
    ("ctrl-c", "interrupted"),
    ("sigterm", "stopped by SIGTERM"),
])
def test_the_save_on_ctrl_c_or_sigterm_on_a_full_disk(corpus, run, capsys, monkeypatch, stop,
                                                      said):
    before, real, calls = files_of(run), model.loss_and_grads, []

    def stopped(*a, **kw):
        calls.append(1)
        if len(calls) == 2 and stop == "ctrl-c":
            raise KeyboardInterrupt
        if len(calls) == 2:
            signal.raise_signal(signal.SIGTERM)
        return real(*a, **kw)

    monkeypatch.setattr(model, "loss_and_grads", stopped)
    failing_savez(monkeypatch, OSError(errno.ENOSPC, NO_SPACE))
    assert training.main(args(corpus, run, "--max-steps", "9", "--resume")) == oserrors.STATUS
    assert error_line(capsys.readouterr().err) == (f"error: {said}, but cannot write "
                                                   f"checkpoint {run / 'last'}: {NO_SPACE}")
    assert_kept(run, before)


def test_a_read_only_run_directory(corpus, run, capsys, monkeypatch):
    before = files_of(run)
    refuse_new_files(monkeypatch, run)
    try:
        code = training.main(args(corpus, run, "--max-steps", "6", "--resume"))
    finally:
        run.chmod(0o755)
    assert code == oserrors.STATUS
    # the first file the run writes there: the lock it holds the directory by
    assert error_line(capsys.readouterr().err) == f"error: cannot write {run / '.lock'}: {DENIED}"
    monkeypatch.undo()
    assert_kept(run, before)


def test_a_checkpoint_that_vanishes_between_check_and_use(corpus, run, capsys, monkeypatch):
    real = checkpoint.read_meta

    def vanishes_then_read(run_dir, name):  # after load's check that the json is there
        (Path(run_dir) / f"{name}.json").unlink()
        return real(run_dir, name)

    monkeypatch.setattr(checkpoint, "read_meta", vanishes_then_read)
    assert training.main(args(corpus, run, "--resume")) == oserrors.STATUS
    assert error_line(capsys.readouterr().err) == (f"error: cannot read {run / 'last.json'}: "
                                                   f"{os.strerror(errno.ENOENT)}")


def test_a_subword_model_that_cannot_be_written(corpus, tmp_path):
    pytest.importorskip("sentencepiece")
    out = tmp_path / "sw"
    p = limited("minirnnsearch.training", args(corpus, out, "--subword", "500"), 1000)
    assert p.returncode == oserrors.STATUS
    assert error_line(p.stderr) == f"error: cannot write {out / 'subword.model'}: {TOO_LARGE}"
    assert not out.exists()  # made for the run, and removed empty


def test_the_corpus_cache_is_written_whole_or_not_at_all(tmp_path):
    """No room for the first file: no file and no temporary; then the whole corpus."""
    code = ("import resource, sys; from minirnnsearch.data.corpus import builtin_corpus; "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)); "
            "builtin_corpus(sys.argv[1], n_train=300, n_dev=20, n_test=30)")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                       text=True)
    assert p.returncode != 0 and TOO_LARGE in p.stderr
    (cache,) = tmp_path.iterdir()
    assert list(cache.iterdir()) == []
    paths = data_corpus.builtin_corpus(tmp_path, n_train=300, n_dev=20, n_test=30)
    assert len(data_io.read_lines(paths["train.en"])) == 300 and temporaries(cache) == []


# -- translate.py and the other commands -------------------------------------------------------

def source(tmp_path) -> Path:
    src = tmp_path / "in.en"
    src.write_text("I see it.\nThe dog sees the cat.\nWe see them.\n", encoding="utf-8")
    return src


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_translations_to_a_full_stdout(trained, tmp_path, unbuffered):
    """/dev/full: written as each line goes (PYTHONUNBUFFERED) or when the buffer is flushed at
    the end."""
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "translate.py", "--model", trained, "--device",
                            "cpu", "--quiet", "--input", source(tmp_path)],
                           cwd=Path(__file__).parents[1], stdout=full, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "PYTHONUNBUFFERED": unbuffered})
    assert p.returncode == oserrors.STATUS
    assert error_line(p.stderr) == f"error: cannot write <stdout>: {NO_SPACE}"


@pytest.mark.parametrize("module, argv", [
    ("minirnnsearch.gradcheck", ["--variant", "encdec"]),
    ("minirnnsearch.bench", ["--device", "cpu", "--batch", "4", "--src-len", "3", "--tgt-len",
                             "3", "--emb", "4", "--hidden", "4", "--align", "4", "--maxout",
                             "2", "--vocab", "20", "--steps", "1", "--warmup", "0"]),
])
def test_a_full_stdout_under_the_bench_and_the_gradient_check(module, argv):
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", module, *argv], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=300)
    assert p.returncode == oserrors.STATUS
    assert error_line(p.stderr) == f"error: cannot write <stdout>: {NO_SPACE}"


@pytest.mark.parametrize("what", ["--output", "--attention-png"])
def test_translations_and_figures_on_a_full_disk(trained, tmp_path, what):
    """No room for the output (kept as it was) or the first figure; no temporary left."""
    old = tmp_path / "out.fr"
    old.write_text("old\n")
    target = old if what == "--output" else tmp_path / "png"
    p = limited("minirnnsearch.translation", ["--model", trained, "--device", "cpu", "--quiet",
                                              "--input", source(tmp_path), "--nbest", "2",
                                              what, target], 20)  # n-best lines: > 20 bytes
    assert p.returncode == oserrors.STATUS
    failed = old if what == "--output" else target / "00000.png"
    assert error_line(p.stderr) == f"error: cannot write {failed}: {TOO_LARGE}"
    assert old.read_text() == "old\n" and temporaries(tmp_path) == []
    if what == "--attention-png":
        assert list(target.iterdir()) == []


def test_translation_input_that_vanishes_between_check_and_use(trained, tmp_path, capsys,
                                                               monkeypatch):
    class Vanishing(type(Path())):
        def is_dir(self):
            self.unlink()
            return False

    monkeypatch.setattr(data_io, "Path", Vanishing)
    src = source(tmp_path)
    assert translation.main(["--model", str(trained), "--input", str(src)]) == oserrors.STATUS
    assert error_line(capsys.readouterr().err) == (f"error: cannot read {src}: "
                                                   f"{os.strerror(errno.ENOENT)}")


def a_wheel(d: Path) -> Path:
    wheel = d / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/locale/fr/LC_MESSAGES/a.po", "".join(
            f'msgid "message number {n} here"\nmsgstr "message numéro {n} ici"\n\n'
            for n in range(40)))
    return wheel


@pytest.mark.parametrize("command", ["train", "subword", "translate", "figures", "story",
                                     "corpus", "real"])
def test_every_command_in_a_read_only_directory(corpus, trained, tmp_path, read_only, capsys,
                                                command):
    """Each command asked to write under a directory that is not writable: one line, status 1,
    nothing created."""
    out = read_only / "out"
    translate = ["--model", str(trained), "--input", str(source(tmp_path))]
    main, argv, failed = {
        "train": (training.main, args(corpus, out), f"create directory {out}"),
        "subword": (training.main, args(corpus, out, "--subword", "500"),
                    f"create directory {out}"),
        "translate": (translation.main, [*translate, "--output", str(out)], f"write {out}"),
        "figures": (translation.main, [*translate, "--attention-png", str(out)],
                    f"create directory {out}"),
        "story": (story.main, ["--figures", str(out)], f"create directory {out}"),
        "corpus": (data_corpus.main, [str(out)],
                   f"create directory {out / 'builtin-v1-seed1234-50000'}"),
        "real": (real.main, ["--source", str(a_wheel(tmp_path)), "--out", str(out), "--dev",
                             "5", "--test", "5"], f"create directory {out}"),
    }[command]
    if command == "subword":
        pytest.importorskip("sentencepiece")
    assert main(argv) == oserrors.STATUS
    assert error_line(capsys.readouterr().err) == f"error: cannot {failed}: {DENIED}"
    assert list(read_only.iterdir()) == []
