"""What a registered credentials-provider function is, as `forklift functions list|show` describe it.

Apart from the registry (`forklift.credentials.functions`) so that a listing can be built from rows
read without the ORM (`forklift.quickread`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

PYTHON, EXEC = "python", "exec"
# The columns of `credential_functions` a FunctionInfo is made of, after its ARN.
COLUMNS = ("name", "runtime", "handler", "origin", "timeout", "code_sha256", "code_size", "created_at", "updated_at")


class FunctionConfiguration(TypedDict):
    """The members of Lambda's FunctionConfiguration that forklift fills."""

    FunctionName: str
    FunctionArn: str
    Runtime: str
    Handler: str
    Timeout: float
    CodeSha256: str
    CodeSize: int
    LastModified: str


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    arn: str
    runtime: str
    handler: str
    origin: str
    timeout: float
    code_sha256: str
    code_size: int
    created_at: float
    updated_at: float

    def describe(self) -> FunctionConfiguration:
        """Lambda-like configuration; no code, no command arguments."""
        handler = f"{Path(self.origin).name}:{self.handler}" if self.runtime == PYTHON else self.origin
        return {
            "FunctionName": self.name, "FunctionArn": self.arn, "Runtime": self.runtime, "Handler": handler,
            "Timeout": self.timeout, "CodeSha256": self.code_sha256, "CodeSize": self.code_size,
            "LastModified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.updated_at)),
        }
