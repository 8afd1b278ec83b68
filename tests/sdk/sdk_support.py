"""Helpers for the SDK tests: running the SageMaker Python SDK v2 and the AWS CLI v1 from the lock file's
virtual environment against a `forklift serve`."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fixtures.serve import ROLE, ServeProcess, function_arn

ROOT = Path(__file__).resolve().parents[2]
SDK_V2_VENV = ROOT / ".venv" / "sagemaker-sdk-v2"
SDK_PYTHON = SDK_V2_VENV / "bin" / "python"
AWS_CLI = SDK_V2_VENV / "bin" / "aws"
TELEMETRY_OPT_OUT = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
PROVIDER = function_arn("registry-creds")
__all__ = ["AWS_CLI", "PROVIDER", "ROLE", "SDK_PYTHON", "SDK_V2_VENV", "TELEMETRY_OPT_OUT", "SdkRun"]


@dataclass
class SdkRun:
    """A `forklift serve`, the sample image, and a HOME for the SDK (its config.yaml opting out of telemetry)."""

    server: ServeProcess
    image: str
    home: Path

    def env(self) -> dict[str, str]:
        url = self.server.url
        env = self.server.env(HOME=str(self.home), SAGEMAKER_SUPPRESS_V2_WARNING="1", PYTHONUNBUFFERED="1",
                              AWS_ENDPOINT_URL_SAGEMAKER=url, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=url,
                              AWS_ENDPOINT_URL_S3=url, AWS_ENDPOINT_URL_CLOUDWATCH=url,
                              AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=url)
        return {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def python(self, script: str, *args: str, cwd: Path | None = None, timeout: float = 600) -> dict:
        """Runs `script` with the SDK v2's Python; it prints one JSON document last, which is returned."""
        result = subprocess.run([str(SDK_PYTHON), "-c", script, *args], env=self.env(), cwd=cwd or self.home,
                                capture_output=True, text=True, timeout=timeout, check=False)
        assert result.returncode == 0, (f"--- stdout ---\n{result.stdout[-4000:]}\n"
                                        f"--- stderr ---\n{result.stderr[-6000:]}")
        assert "Traceback" not in result.stderr, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def aws(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([str(AWS_CLI), *args], env=self.env(), cwd=cwd or self.home, capture_output=True,
                                text=True, timeout=300, check=False)
        assert result.returncode == 0, f"aws {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result
