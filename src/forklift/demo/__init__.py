"""The main job: forklift end to end on its embedded defaults, loudly failing on any step.

A private registry with TLS (a generated CA registered in certs.d) and basic auth; a training image
and an inference image built and pushed with credentials; a credentials-provider function; then
`forklift serve` and AWS's documented boto3 code, unchanged but for the endpoint (set through
`AWS_ENDPOINT_URL_SAGEMAKER`): a training job from the private registry (Vpc mode, credentials
function), the trained model deployed to an endpoint, predictions; and the same training image as a
Gradient-style experiment.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from forklift.demo.flows import DemoContext, run_flows
from forklift.demo.harness import DEMO_USER, DemoFailed, Server, Timings

__all__ = ["DEMO_USER", "DemoFailed", "Server", "Timings", "run_demo"]

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
