"""CloudWatch Logs filter patterns for unstructured messages (FilterLogEvents' `filterPattern`).

    (empty)               every message
    ERROR                 the message contains ERROR (terms are case-sensitive)
    ERROR timeout         ... both terms
    "model server"        ... the exact phrase (quotes are needed around spaces and punctuation)
    ?ERROR ?WARN          ... at least one of the ?-terms
    ERROR -healthy        ... ERROR, and not healthy
    %ab+c%                ... a match of the regular expression

JSON (`{ $.level = "error" }`) and space-delimited (`[ip, user, ...]`) patterns are refused with a
ValueError rather than matched wrongly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


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
            try:
                return re.compile(body).search, end + 1
            except re.error as exc:
                raise ValueError(f"Invalid filter pattern: bad regular expression %{body}%: {exc}") from None
        return (lambda message: body in message), end + 1
    end = position
    while end < len(text) and not text[end].isspace():
        end += 1
    if end == position:
        raise ValueError(f"Invalid filter pattern: a ? or - without a term in {text!r}")
    word = text[position:end]
    return (lambda message: word in message), end
