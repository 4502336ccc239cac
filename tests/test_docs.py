"""README.md and docs/*.md stay true: every command they show still parses; every relative
link, heading anchor and named source file exists; every docs page is linked from the README.

A command is a line that runs the project, ``python train.py ...``, ``python translate.py ...``,
``python docs/make_walkthrough.py`` or ``python -m minirnnsearch.X ...``: in a fenced block (also
behind ``VAR=value``, ``mpiexec -n K`` or a ``$`` prompt, after a pipe, with ``\\`` continuations,
shell variables set earlier in the block and ``{a,b}`` braces expanded as bash would) or in inline
code. Each is parsed by its program's own argparse parser (``build_parser()`` of its module, of
the ``cli.py`` that a package's ``__main__.py`` runs, or of the file for
docs/make_walkthrough.py; ``story`` passes the options it does not know to train.py's), without
running it: an unknown option, a bad value, a missing required argument or a module that does
not exist fails, naming the file and line. Each program is also run once with ``--help``.

A ``python`` block is a snippet of the Python API: the snippets of a page run in order, in one
fresh interpreter in an empty directory (so each may use what the ones before it made), and
one that raises fails, naming the file and line.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a script -> the module that parses its command line: a package module, or a file of the repository
SCRIPTS = {"train.py": "minirnnsearch.training", "translate.py": "minirnnsearch.translation",
           "docs/make_walkthrough.py": "docs/make_walkthrough.py"}
# where a program's build_parser() is when not in the module it names: the scripts', and a
# package's, whose __main__.py runs its cli.py
PARSERS = {**SCRIPTS, "minirnnsearch.bench": "minirnnsearch.bench.cli"}
FORWARDS = {"minirnnsearch.story": "minirnnsearch.training"}  # options it does not know go on
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
REDIRECTS = {"<", ">", ">>"}
ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")
SHELLS = {"bash", "sh", "shell", "console"}
RUNS_PYTHON = re.compile(r"\s*([A-Za-z_]\w*=\S*\s+)*(mpiexec|mpirun|python3?)\s")


@dataclass
class Command:
    where: str         # README.md:12
    text: str          # the line as written (continuations joined)
    program: str       # train.py, translate.py or minirnnsearch.X
    args: list[str]


def fenced_blocks(text: str) -> list[tuple[str, list[tuple[int, str]]]]:
    """The fenced blocks of a markdown text: (language, [(line number, line)])."""
    blocks, lang, block = [], "", None
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            if block is None:
                lang, block = line.strip()[3:].strip(), []
            else:
                blocks.append((lang, block))
                block = None
        elif block is not None:
            block.append((n, line))
    return blocks


def shell_lines(lang: str, block: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The shell lines of a block, ``\\`` continuations joined: every line of a ``bash`` block;
    elsewhere (a transcript, output) the lines after a ``$ `` prompt, which is dropped, and those
    that start with a command running python."""
    out, start, parts = [], None, []
    for n, line in block:
        if start is None:
            if not (lang in SHELLS or line.startswith("$ ") or RUNS_PYTHON.match(line)):
                continue
            start = n
            line = line.removeprefix("$ ")
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        out.append((start, " ".join(p.strip() for p in parts)))
        start, parts = None, []
    return out


def expand_braces(word: str) -> list[str]:
    """bash's ``a{b,c}d`` -> ``abd acd`` (no nesting needed here)."""
    m = re.match(r"(.*?)\{([^{}]*,[^{}]*)\}(.*)", word)
    if not m:
        return [word]
    head, alternatives, tail = m.groups()
    return [w for alt in alternatives.split(",") for w in expand_braces(head + alt + tail)]


def expand(text: str, variables: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced where NAME is known."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)",
                  lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text)


def split_shell(text: str, variables: dict[str, str]) -> list[list[str]]:
    """The simple commands of a shell line, variables and braces expanded, redirections gone."""
    lexer = shlex.shlex(expand(text, variables), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, words, skip = [], [], False
    for token in lexer:
        if skip:
            skip = False
        elif token in SEPARATORS:
            commands.append(words)
            words = []
        elif token in REDIRECTS:
            skip = True
        else:
            words += expand_braces(token)
    return [c for c in (*commands, words) if c]


def project_command(words: list[str], variables: dict[str, str]) -> tuple[str, list[str]] | None:
    """(program, args) if ``words`` runs the project; assignments are recorded in ``variables``."""
    if words[0] == "export":
        words = words[1:]
    while words and ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        variables[name] = expand(value, variables)  # set earlier on the same line
    if words and words[0] in ("mpiexec", "mpirun"):
        while words and Path(words[0]).name not in ("python", "python3"):
            words = words[1:]
    if len(words) < 2 or Path(words[0]).name not in ("python", "python3"):
        return None
    if words[1] == "-m" and words[2].startswith("minirnnsearch"):
        return words[2], words[3:]
    if words[1].endswith(".py"):
        return words[1], words[2:]
    return None


def prose(page: Path) -> str:
    """The page with its fenced blocks blanked (lines keep their numbers)."""
    return re.sub(r"^```.*?^```", lambda m: "\n" * m.group().count("\n"),
                  page.read_text(encoding="utf-8"), flags=re.S | re.M)


def runs(where: str, line: str, variables: dict[str, str]) -> list[Command]:
    """The commands of a shell line that run the project."""
    return [Command(where, line, *cmd) for words in split_shell(line, variables)
            if (cmd := project_command(words, variables))]


def commands() -> list[Command]:
    found = []
    for page in PAGES:
        name = page.relative_to(ROOT)
        for lang, block in fenced_blocks(page.read_text(encoding="utf-8")):
            variables: dict[str, str] = {}  # set by one line, used by the next
            for n, line in shell_lines(lang, block):
                found += runs(f"{name}:{n}", line, variables)
        text = prose(page)
        for span in re.finditer(r"`([^`]+)`", text):  # inline: `python train.py --band 2`
            line = " ".join(span.group(1).split())
            if RUNS_PYTHON.match(line + " "):
                found += runs(f"{name}:{text.count(chr(10), 0, span.start()) + 1}", line, {})
    return found


COMMANDS = commands()


def parse(program: str, args: list[str]) -> str:
    """Parse ``args`` as ``program`` would; returns argparse's error output ('' if accepted)."""
    name = PARSERS.get(program, program)
    if name.endswith(".py"):  # a file outside the package: loaded from its path
        spec = importlib.util.spec_from_file_location(Path(name).stem, ROOT / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(name)
    parser = module.build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if program in FORWARDS:
                _, rest = parser.parse_known_args(args)
                importlib.import_module(FORWARDS[program]).build_parser().parse_args(rest)
            else:
                parser.parse_args(args)
    except SystemExit as e:
        return err.getvalue().strip().splitlines()[-1] if e.code else ""  # the error line
    return ""


def check(cmd: Command) -> str:
    """'' if the command parses, else what is wrong with it."""
    if cmd.program.endswith(".py") and cmd.program not in SCRIPTS:
        return f"{cmd.program}: no such entry point (the scripts are {', '.join(SCRIPTS)})"
    try:
        return parse(cmd.program, cmd.args)
    except ModuleNotFoundError as e:
        return f"{cmd.program}: {e}"
    except AttributeError as e:
        return f"{cmd.program}: {e} (a module run by the docs gives its parser as build_parser())"


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.where for c in COMMANDS])
def test_documented_command_parses(cmd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # output paths are checked against an empty directory
    problem = check(cmd)
    assert not problem, f"{cmd.where}: {cmd.text}\n{problem}"


def test_the_docs_show_every_entry_point():
    shown = {c.program for c in COMMANDS}
    assert {"train.py", "translate.py", "minirnnsearch.story", "minirnnsearch.gradcheck",
            "minirnnsearch.bench", "minirnnsearch.data.corpus"} <= shown


@pytest.mark.parametrize("program", sorted({c.program for c in COMMANDS}))
def test_entry_point_runs_with_help(program):
    argv = [program] if program.endswith(".py") else ["-m", program]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *argv, "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


@pytest.mark.parametrize(("line", "problem"), [
    ("python train.py --epochs 2 --no-such-option 3", "unrecognized arguments: --no-such-option"),
    ("OMP_NUM_THREADS=1 mpiexec -n 2 python train.py --batch-size 0",
     "argument --batch-size: must be at least 1, got 0"),
    ("D=data; python translate.py --model runs/x --input $D/in --beem 5", "unrecognized"),
    ("python -m minirnnsearch.story --minutes 1 --valid-size 10 --quiet --colour",
     "unrecognized arguments: --colour"),
    ("python -m minirnnsearch.data.subword d/{train.en,train.fr,dev.en}", "required: dev_tgt"),
    ("python -m minirnnsearch.nosuch --help", "No module named 'minirnnsearch.nosuch'"),
    ("python -m minirnnsearch.blas", "has no attribute 'build_parser'"),
    ("python trian.py", "trian.py: no such entry point"),
])
def test_a_wrong_command_is_caught(line, problem, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    variables: dict[str, str] = {}
    found = [c for words in split_shell(line, variables)
             if (c := project_command(words, variables))]
    assert len(found) == 1
    assert problem in check(Command("test", line, *found[0]))


def test_shell_lines_are_read_as_bash_would():
    block = list(enumerate([
        "export OMP_NUM_THREADS=1; D=.cache/x; A=\"--train-src $D/train.en --device cpu\"",
        "$ printf 'a b\\n' \\",
        "    | python translate.py --model runs/x < in.en > out.fr   # a comment",
        "mpiexec -f hosts -n 8 /v/bin/python train.py $A --out runs/dp",
        "pip install -e .",
    ], 1))
    variables: dict[str, str] = {}
    found = [c for _, line in shell_lines("bash", block) for words in split_shell(line, variables)
             if (c := project_command(words, variables))]
    assert found == [("translate.py", ["--model", "runs/x"]),
                     ("train.py", ["--train-src", ".cache/x/train.en", "--device", "cpu",
                                   "--out", "runs/dp"])]




def snippets(page: Path) -> list[tuple[str, str]]:
    """The page's ``python`` blocks: (file:line of the first line, code)."""
    name = page.relative_to(ROOT)
    return [(f"{name}:{block[0][0]}", "\n".join(line for _, line in block))
            for lang, block in fenced_blocks(page.read_text(encoding="utf-8"))
            if lang == "python" and block]


# Runs each snippet in one namespace; on an error, names the snippet and exits 1.
RUN_SNIPPETS = """
import json, sys, traceback
namespace = {"__name__": "__main__"}
for where, code in json.load(sys.stdin):
    try:
        exec(compile(code, where, "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        sys.exit(f"{where}: this snippet failed")
"""
SNIPPET_PAGES = [p for p in PAGES if snippets(p)]


def test_the_api_page_has_snippets():
    assert ROOT / "docs" / "api.md" in SNIPPET_PAGES


@pytest.mark.parametrize("page", SNIPPET_PAGES, ids=[p.name for p in SNIPPET_PAGES])
def test_documented_python_snippets_run(page, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", RUN_SNIPPETS], cwd=tmp_path, env=env,
                          input=json.dumps(snippets(page)), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def links(page: Path) -> list[str]:
    """The targets of the page's markdown links and images."""
    return re.findall(r"\]\(([^)\s]+)\)", prose(page))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces
    to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", prose(page), flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page):
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = page.parent / path if path else page
        assert file.exists(), f"{page.relative_to(ROOT)} links to a missing file: {target}"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), \
                f"{page.relative_to(ROOT)} links to a missing heading: {target}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.split("#")[0]).resolve() for t in links(ROOT / "README.md")}
    unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link to: {unlinked}"


def test_named_source_files_exist():
    """Every ``path.py`` a page names in backquotes is a file of the repository (a bare or
    partial name, like ``model.py`` or ``nn/gru.py``, ends the path of one)."""
    found = [*ROOT.glob("*.py"), *(ROOT / "minirnnsearch").rglob("*.py"),
             *(ROOT / "tests").rglob("*.py"), *(ROOT / "docs").glob("*.py")]
    files = {p.relative_to(ROOT).as_posix() for p in found}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for name in set(re.findall(r"`([\w./-]+\.py)`", text)):
            assert any(f == name or f.endswith("/" + name) for f in files), \
                f"{page.relative_to(ROOT)} names {name}, which is no file of the repository"
