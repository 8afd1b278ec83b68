"""`forklift demo`: a working directory, every flow in order, a timing summary."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from forklift.demo.flows import DemoContext, run_flows
from forklift.demo.harness import Timings


def run_demo(say: Callable[[str], None] = print, keep: bool = False) -> Timings:
    timings = Timings(say=say)
    work = Path(tempfile.mkdtemp(prefix="forklift-demo-"))
    context = DemoContext(work=work, home=work / "home", password=secrets.token_urlsafe(18), say=say)
    try:
        run_flows(context, timings)
    finally:
        context.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"kept {work}")
    say(timings.summary())
    return timings
