"""Helpers for the experiments tests: the registry's distinctive credentials and a grep for them.

The passwords are random per session so the hygiene checks can grep every file for them.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from fixtures import secretscan
from fixtures.serve import free_port  # noqa: F401  (re-exported for the tests)

USER = "dora"
PASSWORD = f"fl-exp-{secrets.token_hex(12)}"
JSON_KEY_USER = "_json_key"
# bcrypt (the registry's htpasswd) only takes 72 bytes: a short key, but multi-line JSON like a real one.
JSON_KEY = '{\n "type": "service_account",\n "private_key_id": "' + secrets.token_hex(6) + '"\n}'
secretscan.register("the experiments registry's password", PASSWORD, user=USER)
secretscan.register("the experiments registry's JSON key", JSON_KEY, user=JSON_KEY_USER)

def files_containing(root: Path, needles: list[str]) -> list[str]:
    """Every file under `root` whose bytes contain one of `needles` (plain, or JSON-escaped)."""
    forms = set()
    for needle in needles:
        forms.add(needle.encode())
        forms.add(json.dumps(needle)[1:-1].encode())
        forms.update(line.encode() for line in needle.splitlines() if len(line.strip()) > 12)
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(form in data for form in forms):
                hits.append(str(path))
    return hits
