"""How deep a JSON document nests, found without parsing it.

Python's `json` parser recurses once per `[`/`{`, and so do the validator's walk and every handler
that copies a value: a body of 10,000 brackets would end in a RecursionError deep inside one of them.
A request is refused before any of that when it nests deeper than `MAX_DEPTH`, far beyond what
any botocore request shape needs (SageMaker's deepest input is under 15 levels).

The scan runs in C: strings are cut out (a bracket inside one does not nest), every byte but a
bracket is dropped, and innermost `[]` pairs are removed, one level a round, while that shrinks the
brackets fast; what is left is measured by a running count (about 1 s for 16 MiB of brackets).
"""

from __future__ import annotations

import itertools
import operator
import re

MAX_DEPTH = 64

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_STEPS = bytes.maketrans(b"[]", b"\x02\x00")  # a running sum of these, less the index, is the depth
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def nests_deeper(document: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON `document` opens more than `limit` arrays/objects inside each other.

    A bracket never closed counts as open to the end (the parser would recurse into it all the same).
    """
    if document.count(b"[") + document.count(b"{") <= limit:
        return False
    if b'"' in document:
        document = _STRING.sub(b"", document)
    brackets = document.translate(_BRACKETS, _NOT_BRACKET)
    if b"[" * (limit + 1) in brackets:
        return True
    for level in range(limit):
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):  # no pair left: what remains is `]]]…[[[`
            return level + brackets.count(b"[") > limit
        if len(reduced) > len(brackets) * 3 // 4:  # deep and wide: count instead
            steps = reduced.translate(_STEPS)
            return level + 1 + max(map(operator.sub, itertools.accumulate(steps), itertools.count(1))) > limit
        brackets = reduced
    return b"[" in brackets
