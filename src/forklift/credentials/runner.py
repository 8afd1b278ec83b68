"""Child-process side of a Python credentials-provider invocation; run as `python -I runner.py`.

Reads one JSON envelope on stdin — {"source", "filename", "handler", "event", "context"} — so neither
the code nor the event ever appears in process arguments or on disk. Anything the handler prints goes
to stderr (its log); the answer, {"ok": <return value>} or {"error": {"type", "message"}}, is the only
thing written to the original stdout. This file imports nothing from forklift.
"""

import json
import os
import sys
import time
import traceback
import types
from typing import NotRequired, TypedDict

MESSAGE_LIMIT = 500


class ContextInfo(TypedDict, total=False):
    function_name: str
    invoked_function_arn: str
    aws_request_id: str


class Envelope(TypedDict):
    """What `invoke.py` writes on stdin (decoded from JSON: the types are what it sends, not checked)."""

    source: str
    filename: str
    handler: str
    event: object
    timeout: NotRequired[float]
    context: NotRequired[ContextInfo]


# {"ok": <return value>} or {"error": {"type": …, "message": …}}
Answer = dict[str, object]


class LambdaContext:
    """The few attributes of AWS Lambda's context object a provider might look at."""

    def __init__(self, info: ContextInfo, deadline: float) -> None:
        self.function_name = info.get("function_name")
        self.function_version = "$LATEST"
        self.invoked_function_arn = info.get("invoked_function_arn")
        self.memory_limit_in_mb = "128"
        self.aws_request_id = info.get("aws_request_id")
        self.log_group_name = "/aws/lambda/" + str(self.function_name)
        self.log_stream_name = info.get("aws_request_id")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(kind: str, message: object) -> Answer:
    return {"error": {"type": kind, "message": str(message)[:MESSAGE_LIMIT]}}


def _run(envelope: Envelope) -> Answer:
    filename = envelope["filename"]
    module = types.ModuleType("forklift_provider")
    module.__file__ = filename
    directory = os.path.dirname(filename)
    if directory and os.path.isdir(directory):
        sys.path.insert(0, directory)  # the handler may import modules beside it, as on Lambda
    try:
        exec(compile(envelope["source"], filename, "exec"), module.__dict__)  # noqa: S102 - running it is the point
    except BaseException as exc:  # noqa: BLE001 - report whatever stopped the import
        traceback.print_exc()
        return _error("ImportError", f"loading {os.path.basename(filename)} failed: {type(exc).__name__}: {exc}")
    handler = getattr(module, envelope["handler"], None)
    if not callable(handler):
        return _error("HandlerNotFound", f"{os.path.basename(filename)} defines no function {envelope['handler']!r}")
    context = LambdaContext(envelope.get("context") or {}, time.monotonic() + float(envelope.get("timeout", 10)))
    try:
        value = handler(envelope["event"], context)
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: a provider must return
        traceback.print_exc()
        return _error(type(exc).__name__, exc)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        return _error("ResponseNotSerializable", f"the return value is not JSON-serializable ({type(exc).__name__})")
    return {"ok": value}


def main() -> None:
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # prints, and children the handler starts, write to the log, not into the answer
    sys.stdout = sys.stderr
    try:
        envelope: Envelope = json.loads(sys.stdin.read())
        result = _run(envelope)
    except (ValueError, KeyError) as exc:
        result = _error("RunnerError", f"bad envelope: {type(exc).__name__}")
    answer.write(json.dumps(result))
    answer.flush()


if __name__ == "__main__":
    main()
