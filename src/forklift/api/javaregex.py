"""Java regular expressions (the dialect of botocore's `pattern` traits) as Python `re` patterns.

AWS checks `pattern` with `java.util.regex` and a whole-value match (`Matcher.matches()`), so a
translated pattern is used with `fullmatch`. What differs between the dialects, and how it maps:

- `\\p{Alnum}`, `\\p{Print}`, `\\p{ASCII}` … are POSIX classes, ASCII-only in Java → explicit ranges.
- `\\p{L}`, `\\p{Lu}`, `\\p{N}` … are Unicode general categories → ranges built from `unicodedata`.
- `\\d \\w \\s \\b` are ASCII-only in Java → compiled with `re.ASCII`.
- `.` excludes every Java line terminator (`\\n \\r \\u0085 \\u2028 \\u2029`), not only `\\n`.
- `$` (no MULTILINE) also matches before a final line terminator, `\\r\\n` included; `\\z` is
  Python's `\\Z`, and Java's `\\Z` is "end, or before a final terminator".
- `\\uD800\\uDC00` (a UTF-16 surrogate pair) names one astral code point; `\\x{…}` is a code point.
- `(?<name>…)` is `(?P<name>…)`; `\\Q…\\E` quotes; nested classes inside a class are unions.

Class intersection (`&&`), `\\P{…}` inside a class and a few rare escapes raise `Unsupported`;
callers treat such a pattern as unchecked rather than guessing.

A translated pattern runs on RE2, in time linear in the value, wherever RE2 means the same by it:
the models hold patterns that backtrack exponentially under `re` (SageMaker's
`[a-z0-9]([-a-z0-9]*[a-z0-9]){0,39}?` takes seconds on 28 characters, doubling with each one), and
any caller may send any value. What RE2 lacks or reads differently (lookaround, so `$`;
backreferences; `\\s`, which in RE2 leaves out `\\x0b`; `(?i)`, which in RE2 folds all of Unicode)
stays on `re`.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
import warnings
from typing import Any, Protocol

import re2

from forklift.errors import ForkliftError

TERMINATORS = "\\n\\r\\u0085\\u2028\\u2029"
DOT = f"[^{TERMINATORS}]"
DOLLAR = f"(?=(?:\\r\\n|[{TERMINATORS}])?\\Z)"

POSIX = {
    "Lower": "a-z", "Upper": "A-Z", "ASCII": "\\x00-\\x7f", "Alpha": "a-zA-Z", "Digit": "0-9",
    "Alnum": "a-zA-Z0-9", "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~",
    "Blank": " \\t", "Cntrl": "\\x00-\\x1f\\x7f", "XDigit": "0-9a-fA-F", "Space": " \\t\\n\\x0b\\f\\r",
}
HORIZONTAL_SPACE = " \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"


class Unsupported(ForkliftError, ValueError):
    """The pattern uses a Java construct this translator does not reproduce faithfully."""


@functools.cache
def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """Two-letter general category → sorted code point ranges (one pass over Unicode, ~0.3 s)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category("\0")
    for cp in range(1, sys.maxunicode + 2):
        cat = unicodedata.category(chr(cp)) if cp <= sys.maxunicode else None
        if cat != current:
            ranges.setdefault(current, []).append((start, cp - 1))
            start, current = cp, cat
    return ranges


def _class_body(ranges: list[tuple[int, int]]) -> str:
    parts = []
    for lo, hi in ranges:
        parts.append(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}")
    return "".join(parts)


@functools.cache
def _property(name: str) -> str:
    """The body of a character class (no brackets) for `\\p{name}`."""
    if name.startswith("Is") and len(name) <= 4:
        name = name[2:]
    if name in POSIX:
        return POSIX[name]
    if name in ("L", "M", "N", "P", "S", "Z", "C") or (len(name) == 2 and name[0] in "LMNPSZC"):
        ranges = [r for cat, rs in _category_ranges().items() if cat.startswith(name) for r in rs]
        if ranges:
            return _class_body(sorted(ranges))
    raise Unsupported(f"\\p{{{name}}}")


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.depth = 0  # nesting of character classes
        self.after_set = False  # the last class member was a set (\w, \p{L}…), so a "-" next is literal

    def run(self) -> str:
        while self.i < len(self.p):
            c = self.p[self.i]
            self.i += 1
            after_set, self.after_set = self.after_set, False
            if c == "\\":
                self._escape()
            elif self.depth and c == "-" and (after_set or self._set_escape_next()):
                self.out.append("\\-")
            elif self.depth:
                self._in_class(c)
            elif c == "[":
                self._open_class()
            elif c == ".":
                self.out.append(DOT)
            elif c == "$":
                self.out.append(DOLLAR)
            elif c == "(" and self.p.startswith("?<", self.i) and self.p[self.i + 2:self.i + 3] not in ("=", "!"):
                self.out.append("(?P<")
                self.i += 2
            else:
                self.out.append(c)
        if self.depth:
            raise Unsupported("unterminated character class")
        return "".join(self.out)

    def _set_escape_next(self) -> bool:
        return self.p.startswith("\\", self.i) and self.p[self.i + 1:self.i + 2] in tuple("dDwWsSpPh")

    def _open_class(self) -> None:
        self.depth = 1
        self.out.append("[")
        if self.p.startswith("^", self.i):
            self.out.append("^")
            self.i += 1

    def _in_class(self, c: str) -> None:
        if c == "]":
            self.depth -= 1
            if self.depth == 0:
                self.out.append("]")
        elif c == "[":
            if self.p.startswith("^", self.i):
                raise Unsupported("negated class nested in a class")
            self.depth += 1  # a union: its members join the enclosing class
        elif c == "&" and self.p.startswith("&", self.i):
            raise Unsupported("class intersection (&&)")
        elif c == "-" and self.p.startswith("-", self.i):
            self.out.append("\\-")
        else:
            self.out.append(c)

    def _escape(self) -> None:
        if self.i >= len(self.p):
            raise Unsupported("trailing backslash")
        c = self.p[self.i]
        self.i += 1
        self.after_set = bool(self.depth) and c in "dDwWsSpPh"
        if c in "pP":
            self._property(negated=c == "P")
        elif c == "Q":
            end = self.p.find("\\E", self.i)
            end = len(self.p) if end < 0 else end
            self.out.append("".join(f"\\U{ord(ch):08x}" for ch in self.p[self.i:end]))
            self.i = end + 2
        elif c == "u":
            self._code_point(int(self._take(4), 16))
        elif c == "x":
            if self.p.startswith("{", self.i):
                end = self.p.index("}", self.i)
                digits, self.i = self.p[self.i + 1:end], end + 1
            else:
                digits = self._take(2)
            self._code_point(int(digits, 16))
        elif c == "0":
            digits = ""
            while self.i < len(self.p) and self.p[self.i] in "01234567" and len(digits) < 3:
                digits += self.p[self.i]
                self.i += 1
            self._code_point(int(digits or "0", 8))
        elif c == "z":
            self.out.append("\\Z")
        elif c == "Z":
            self.out.append(DOLLAR)
        elif c == "h":
            self.out.append(HORIZONTAL_SPACE if self.depth else f"[{HORIZONTAL_SPACE}]")
        elif c == "e":
            self.out.append("\\x1b")
        elif c in "RXGHVkc" or (c == "v" and not self.depth):
            raise Unsupported(f"\\{c}")
        else:  # \d \w \s \b \A \t \n, back references and escaped punctuation mean the same in Python
            self.out.append("\\" + c)

    def _take(self, n: int) -> str:
        text = self.p[self.i:self.i + n]
        if len(text) != n:
            raise Unsupported("truncated escape")
        self.i += n
        return text

    def _code_point(self, cp: int) -> None:
        if 0xD800 <= cp <= 0xDBFF and self.p.startswith("\\u", self.i):
            low = int(self.p[self.i + 2:self.i + 6], 16)
            if 0xDC00 <= low <= 0xDFFF:  # a UTF-16 surrogate pair names one astral code point
                self.i += 6
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
        self.out.append(f"\\U{cp:08x}")

    def _property(self, negated: bool) -> None:
        if self.p.startswith("{", self.i):
            end = self.p.index("}", self.i)
            name, self.i = self.p[self.i + 1:end], end + 1
        else:
            name = self._take(1)
        body = _property(name)
        if self.depth:
            if negated:
                raise Unsupported("\\P{…} inside a character class")
            self.out.append(body)
        else:
            self.out.append(f"[{'^' if negated else ''}{body}]")


def translate(pattern: str) -> str:
    """The Python `re` source for a Java pattern (use with `fullmatch`, flags `re.ASCII`)."""
    return _Translator(pattern).run()


class JavaPattern(Protocol):
    def fullmatch(self, text: str) -> Any: ...

    def match(self, text: str) -> Any: ...


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a pattern RE2 refuses goes to `re`: no need to print it
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)


def _re2_source(source: str) -> str | None:
    """`source` (for `re`, flags ASCII) in RE2's spelling; None where RE2 would read it otherwise."""
    if "(?i" in source:
        return None
    differs = False

    def respell(escape: re.Match[str]) -> str:
        nonlocal differs
        body = escape.group(1)
        if body[0] in "uU" and len(body) > 1:
            return f"\\x{{{body[1:]}}}"
        if body == "Z":  # what `translate` writes for Java's \z
            return "\\z"
        differs = differs or body in "sS"
        return escape.group(0)

    respelled = _ESCAPE.sub(respell, source)
    return None if differs else _split_repetitions(respelled)


_RE2_MAX_REPEAT = 1000
_BOUNDS = re.compile(r"\{(\d+),(\d+)\}")


def _split_repetitions(source: str) -> str | None:
    """`(G){m,n}` with n past RE2's cap of 1000 as `(G){m,1000}(G){0,n-1000}` (same verdict, as RE2
    has no backreferences to tell the copies apart); None for a count this cannot split."""
    out: list[str] = []
    groups: list[int] = []  # where in `out` each open group begins
    closed: int | None = None  # where the group just closed begins, when the last token closed one
    i = 0
    while i < len(source):
        c = source[i]
        just_closed, closed = closed, None
        if c == "\\":
            out.append(source[i:i + 2])
            i += 2
            continue
        if c == "[":  # a class: copied whole (its first "]", after an optional "^", is a member)
            end = i + 1 + (source[i + 1:i + 2] == "^")
            end += source[end:end + 1] == "]"
            while end < len(source) and source[end] != "]":
                end += 2 if source[end] == "\\" else 1
            out.append(source[i:end + 1])
            i = end + 1
            continue
        bounds = _BOUNDS.match(source, i) if c == "{" else None
        if bounds is not None and int(bounds.group(2)) > _RE2_MAX_REPEAT:
            low, high = int(bounds.group(1)), int(bounds.group(2))
            if just_closed is None or low > _RE2_MAX_REPEAT or high > 2 * _RE2_MAX_REPEAT:
                return None
            group = "".join(out[just_closed:])
            out.append(f"{{{low},{_RE2_MAX_REPEAT}}}{group}{{0,{high - _RE2_MAX_REPEAT}}}")
            i = bounds.end()
            continue
        if c == "(":
            groups.append(len(out))
        elif c == ")" and groups:
            closed = groups.pop()
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=2048)
def compile_java(pattern: str) -> JavaPattern:
    """Compile a Java pattern (on RE2 where it can be); raises `Unsupported` for what the translator
    cannot honour."""
    source = translate(pattern)
    linear = _re2_source(source)
    if linear is not None:
        try:
            return re2.compile(linear, _RE2_OPTIONS)  # type: ignore[no-any-return]
        except re2.error:
            pass  # a construct RE2 lacks: `re` below
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # literal '[' / '&' / '~' inside classes
        try:
            return re.compile(source, re.ASCII)
        except re.error as exc:
            raise Unsupported(f"{pattern!r}: {exc}") from None
