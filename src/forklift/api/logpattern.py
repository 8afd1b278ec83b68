"""CloudWatch Logs filter patterns for unstructured messages (FilterLogEvents' `filterPattern`).

    (empty)               every message
    ERROR                 the message contains ERROR (terms are case-sensitive)
    ERROR timeout         ... both terms
    "model server"        ... the exact phrase (quotes are needed around spaces and punctuation)
    ?ERROR ?WARN          ... at least one of the ?-terms
    ERROR -healthy        ... ERROR, and not healthy
    %ab+c%                ... a match of the regular expression

A regular expression is compiled with RE2, which matches in time linear in the message (Python's
`re` backtracks: `%(a+)+b%` on a line of 30 a's takes minutes). RE2's syntax covers CloudWatch's
documented regex subset; backreferences, lookaround, atomic groups and possessive quantifiers, which
CloudWatch does not offer either, are refused with the reason.

JSON (`{ $.level = "error" }`) and space-delimited (`[ip, user, ...]`) patterns are refused with a
ValueError rather than matched wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import re2


@dataclass
class _Terms:
    required: list[Callable[[str], bool]] = field(default_factory=list)
    optional: list[Callable[[str], bool]] = field(default_factory=list)
    excluded: list[Callable[[str], bool]] = field(default_factory=list)

    def __call__(self, message: str) -> bool:
        return (all(t(message) for t in self.required)
                and (not self.optional or any(t(message) for t in self.optional))
                and not any(t(message) for t in self.excluded))


def compile_pattern(pattern: str | None) -> Callable[[str], bool]:
    """A predicate on messages; ValueError (the reason) for a pattern it does not understand."""
    text = (pattern or "").strip()
    if text[:1] in ("{", "["):
        kind = "JSON" if text[0] == "{" else "space-delimited"
        raise ValueError(f"{kind} filter patterns are not supported by forklift; use terms, \"phrases\" or %regex%")
    terms = _Terms()
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        kind = text[position] if text[position] in "?-" else ""
        position += len(kind)
        term, position = _term(text, position)
        {"": terms.required, "?": terms.optional, "-": terms.excluded}[kind].append(term)
    return terms


def _term(text: str, position: int) -> tuple[Callable[[str], bool], int]:
    """The term starting at `position` and the position after it."""
    opening = text[position:position + 1]
    if opening in ('"', "%"):
        end = text.find(opening, position + 1)
        if end < 0:
            raise ValueError(f"Invalid filter pattern: unclosed {opening} in {text!r}")
        body = text[position + 1:end]
        if opening == "%":
            return compile_regex(body), end + 1
        return (lambda message: body in message), end + 1
    end = position
    while end < len(text) and not text[end].isspace():
        end += 1
    if end == position:
        raise ValueError(f"Invalid filter pattern: a ? or - without a term in {text!r}")
    word = text[position:end]
    return (lambda message: word in message), end


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print each refusal on the server's stderr
# What RE2 says about a construct it lacks, and the name a user knows it by.
_UNSUPPORTED = {"(?=": "lookahead", "(?!": "lookahead",
                "(?<=": "lookbehind", "(?<!": "lookbehind", "(?>": "atomic groups",
                "bad repetition operator: ++": "possessive quantifiers", "bad repetition operator: *+":
                "possessive quantifiers", "bad repetition operator: ?+": "possessive quantifiers"}


def compile_regex(body: str) -> Callable[[str], Any]:
    """The search of the `%body%` term's expression; ValueError naming what is wrong with it."""
    try:
        return re2.compile(body, _OPTIONS).search
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    lacking = next((name for marker, name in _UNSUPPORTED.items() if marker in reason), None)
    if lacking is None and reason.startswith("invalid escape sequence: \\") and reason[-1:].isdigit():
        lacking = "backreferences"
    if lacking is not None:
        raise ValueError(f"Invalid filter pattern: %{body}% uses {lacking}, which filter pattern regular "
                         f"expressions do not support ({reason})")
    raise ValueError(f"Invalid filter pattern: bad regular expression %{body}%: {reason}")
