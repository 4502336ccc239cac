"""A small reader of roff, the man pages' markup (no groff needed): a page's sections, each a
list of blocks (paragraphs, item tags, tables, verbatim text), its escapes resolved to plain
text. What it keeps and drops is described in ``manpages``, which uses it.
"""

from __future__ import annotations

import re
import unicodedata

Block = tuple[str, str]  # (kind, text); kinds: "p" paragraph, "t" tag, "v" verbatim, "b" table
Section = tuple[str, list[Block]]  # (title, blocks)


# -- roff escapes ------------------------------------------------------------------------------

_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", ":": "\u0308", ",": "\u0327",
            "~": "\u0303"}
_CHARS = {"Fo": "«", "Fc": "»", "bu": "•", "em": "—", "en": "–", "aq": "'", "cq": "’",
          "oq": "‘", "lq": "“", "rq": "”", "Bq": "„", "bq": "‚", "dq": '"', "ss": "ß",
          "oe": "œ", "OE": "Œ", "ae": "æ", "mu": "×", "hy": "-", "aa": "´", "ga": "`",
          "*p": "π", "co": "©", "rg": "®", "tm": "™", "ti": "~", "ha": "^", "rs": "\\",
          "sl": "/", "char94": "^", "shc": "", "lh": "", "rh": "", "de": "°", "+-": "±",
          "<=": "≤", ">=": "≥", "->": "→", "<-": "←", "at": "@", "sh": "#", "Do": "$",
          "ba": "|", "or": "|", "pl": "+", "mi": "-", "eq": "=", "lB": "[", "rB": "]",
          "lC": "{", "rC": "}", "la": "⟨", "ra": "⟩", "fo": "‹", "fc": "›", "ul": "_",
          "aga": "`", "dg": "†", "sc": "§", "ps": "¶", "Eu": "€", "eu": "€", "tmu": "×"}
_STRINGS = {"Aq": "'", "AQ": "'", 'L"': '"', 'R"': '"', "C`": "'", "C'": "'", "--": "—",
            "C+": "C++", "PI": "pi", "softhyphen": "", "R": "®", "Tm": "™", "lq": "“",
            "rq": "”"}
# one-character escapes: \e a backslash, \  \~ \0 \t a space, \' an accent, the others here
# nothing (\& \| \c ...); any other (\- \.) is the character itself
_ONE = {"e": "\\", "E": "\\", " ": " ", "~": " ", "0": " ", "t": " ", "'": "´", "&": "",
        "|": "", "^": "", "c": "", "u": "", "d": "", "%": "", ":": "", "/": "", ",": "", "p": "",
        "a": "", "r": "", "z": "", "{": "", "}": "", "!": "", "?": "", "j": ""}
_ESCAPE = re.compile(r"""\\(?:
      [fs](?:\(..|\[[^]]*\]|[-+]?\(..|[-+]?\d|.)      # font, size: dropped
    | [hvwlLxXbDoZNRSHk]'[^']*'                       # motion, drawing ...: dropped
    | [nmMgFY](?:\(..|\[[^]]*\]|.)                    # registers, colours: dropped
    | \((?P<char2>..) | \[(?P<char>[^]]*)\]           # special characters
    | \*(?:\((?P<string2>..)|\[(?P<string>[^]]*)\]|(?P<string1>.))
    | (?P<one>.)
)""", re.X)


def _special(name: str) -> str:
    """A special character ``\\(xx`` or ``\\[name]``: accented letters, ``u00E9``, the table."""
    if len(name) == 2 and name[0] in _ACCENTS:
        return unicodedata.normalize("NFC", name[1] + _ACCENTS[name[0]])
    if re.fullmatch(r"u[0-9A-Fa-f]{4,5}", name):
        return chr(int(name[1:], 16))
    return _CHARS.get(name, "")


def _escape(m: re.Match) -> str:
    if m["char2"] is not None or m["char"] is not None:
        return _special(m["char2"] or m["char"])
    if m["string2"] is not None or m["string"] is not None or m["string1"] is not None:
        return _STRINGS.get(m["string2"] or m["string"] or m["string1"], "")
    if m["one"] is not None:
        return _ONE.get(m["one"], m["one"])
    return ""


def unescape(s: str) -> str:
    """Roff text as plain text: ``\\fBls\\fR \\- list`` -> ``ls - list``."""
    return _ESCAPE.sub(_escape, s)


# -- roff structure ----------------------------------------------------------------------------

_ARG = re.compile(r'"((?:\\.|""|[^"\\])*)"?|((?:\\.|[^\s\\])+)')
_COMMENT = re.compile(r'\\["#].*|\\.')
_REQUEST = re.compile(r"\s*([^\s\\]*)\s*(.*)")
_CONDITION = re.compile(r"(!?)(?:([nt])(?!\S)|'([^']*)'([^']*)')\s*(.*)")
_PARAGRAPH = {"PP", "LP", "P", "sp", "Sp", "HP", "RS", "RE", "SY", "YS"}
_ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}  # words joined: .BR ls (1) -> ls(1)
_FONT = {"B", "I", "SM", "SB", "R", "UE", "ME", "OP"}
_CODE = {"TS": "TE", "nf": "fi", "EX": "EE", "Vb": "Ve"}  # table or verbatim: start, end


def macro_args(rest: str) -> list[str]:
    """A request's arguments: split at spaces, ``"quoted words"`` kept together."""
    return [m[2] if m[1] is None else m[1].replace('""', '"') for m in _ARG.finditer(rest)]


def _condition(rest: str) -> tuple[bool, str]:
    """(truth, the rest of the line) of a one-line ``.if``/``.ie``: ``n`` is true, ``t`` false,
    ``'a'b'`` compares strings, ``!`` negates; any other condition is false."""
    m = _CONDITION.match(rest.lstrip())
    if not m:
        return False, ""
    truth = m[2] == "n" if m[2] else m[3] == m[4]
    return truth != bool(m[1]), m[5]


class Reader:
    """The sections of one page, read line by line (``read_roff``)."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.blocks: list[Block] = []  # of the current section; before the first: left out
        self.words: list[str] = []     # the current block's text
        self.kind = "p"                # the current block's kind
        self.code_end = ""             # in a table or verbatim: the request that ends it
        self.in_definition = False     # in a macro definition (.de ... ..)
        self.depth = 0                 # in a multi-line conditional: its nesting depth
        self.last_ie = False           # the truth of the last .ie, for its .el
        self.title_next = self.tag_next = False  # the next line is a title, a tag
        self.sources_another = False   # a .so request was read

    def line(self, line: str) -> None:
        if self.in_definition:
            self.in_definition = not line.startswith("..")
        elif self.depth:
            self.depth = max(self.depth + line.count("\\{") - line.count("\\}"), 0)
        else:
            line = _COMMENT.sub(lambda m: "" if m[0][1] in '"#' else m[0], line)
            if line.startswith((".", "'")):
                m = _REQUEST.match(line[1:])  # the name ends at a space or an escape: .el\{
                self.request(m[1], m[2])
            elif self.code_end:
                pass  # the text of a table or verbatim block is not used
            elif not line.strip():
                self.end_block()
            else:
                self.text(unescape(line))

    def request(self, name: str, rest: str) -> None:
        if name in ("if", "ie", "el"):
            self.conditional(name, rest)
        elif name in ("de", "de1", "am"):
            self.in_definition = True
        elif name == "so":
            self.sources_another = True
        elif self.code_end:
            if name == self.code_end:
                self.code_end = ""
        elif name in _CODE:
            self.code(name)
        elif name in ("SH", "SS"):
            self.heading(unescape(" ".join(macro_args(rest))).strip())
        elif name in ("TP", "TQ"):
            self.end_block("t")
            self.tag_next = True
        elif name == "IP":
            args = macro_args(rest)
            self.end_block("t")
            self.words = [unescape(args[0])] if args else []
            self.end_block()
        elif name in _PARAGRAPH:
            self.end_block()
        elif name in _FONT | _ALTERNATING:
            self.font(name, macro_args(rest))

    def conditional(self, name: str, rest: str) -> None:
        """``.if``, ``.ie``, ``.el``: a one-line body is read if true; a multi-line one
        (``\\{ ... \\}``) is dropped, but an ``.ie``'s truth is kept for its ``.el``."""
        if name == "el":
            truth, body = not self.last_ie, rest.strip()
        else:
            truth, body = _condition(rest)
            if name == "ie":
                self.last_ie = truth
        if "\\{" in rest:
            self.depth = max(rest.count("\\{") - rest.count("\\}"), 0)
        elif truth and body:
            self.line(body)

    def code(self, name: str) -> None:
        """A table or verbatim block starts: one block of its kind, whatever its lines."""
        self.end_block()
        kind = "b" if name == "TS" else "v"
        if not (self.blocks and self.blocks[-1][0] == kind):
            self.blocks.append((kind, ""))
        self.code_end = _CODE[name]

    def font(self, name: str, args: list[str]) -> None:
        """``.B text``, ``.BR ls (1)``: the text; with no arguments the macro applies to the
        next line, which comes as text."""
        if args:
            text = unescape(("" if name in _ALTERNATING else " ").join(args))
            self.text(f"[{text}]" if name == "OP" else text)

    def heading(self, title: str) -> None:
        """A section starts: ``title``, or if empty the next line's text."""
        self.end_block()
        if title:
            self.blocks = []
            self.sections.append((title, self.blocks))
        self.title_next = not title

    def text(self, text: str) -> None:
        if self.title_next:
            self.heading(text.strip())
        else:
            self.words.append(text)
            if self.tag_next:
                self.tag_next = False
                self.end_block()

    def end_block(self, next_kind: str = "p") -> None:
        """The current block ends (if it has text); the next is of ``next_kind``."""
        text = " ".join(" ".join(self.words).split())
        if text:
            self.blocks.append((self.kind, text))
        self.words, self.kind = [], next_kind


def read(text: str) -> Reader:
    """A page's text read line by line: its sections, and whether it sources another."""
    reader = Reader()
    for line in re.sub(r"(?<!\\)((?:\\\\)*)\\\n", r"\1", text).split("\n"):  # \ continues
        reader.line(line)
    reader.end_block()
    return reader


def read_roff(text: str) -> list[Section]:
    """The sections of a man page: [(title, [(kind, text)])] (see the module docstring)."""
    return read(text).sections
