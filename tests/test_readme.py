"""The README's shell and Python blocks, run in order as a newcomer pastes them, so it cannot rot.

Each ```bash block runs in bash with `set -e` in the working directory and with the exported
variables the blocks before it left (as one terminal session would); each ```python block runs with
the same environment and directory. HOME is a fresh directory, so `~/.forklift`, `~/.docker` and
`~/.config` are the test's own. The registry (localhost:5443) and the server (127.0.0.1:9400) use the
README's own default ports, which must be free.

An HTML comment right before a block can say how the test treats it, for what cannot run here as
written: `<!-- docs-test: skip: WHY -->`, `<!-- docs-test: stand-in: COMMAND -->` (COMMAND runs
instead: the SDK v2 comes from the lock file, not from an unpinned `pip install`), and
`<!-- docs-test: python: INTERPRETER -->` (the Python to run the block with).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from forklift.localregistry import port_free

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SDK_V2_VENV = ROOT / ".venv" / "sagemaker-sdk-v2"
PORTS = (5443, 9400)
BLOCK = re.compile(r"(?:<!-- docs-test: (?P<directive>[a-z-]+): (?P<argument>.*?) -->\n)?"
                   r"```(?P<lang>\w+)\n(?P<body>.*?)```\n", re.S)
BLOCK_TIMEOUT = 600


@dataclass
class Block:
    line: int
    lang: str
    body: str
    directive: str | None
    argument: str | None


def readme_blocks() -> list[Block]:
    text = README.read_text()
    return [Block(text.count("\n", 0, m.start("lang")) + 1, m["lang"], m["body"], m["directive"], m["argument"])
            for m in BLOCK.finditer(text)]


def test_every_runnable_block_is_bash_or_python_and_directives_are_known():
    blocks = readme_blocks()
    assert len(blocks) >= 15
    assert {b.lang for b in blocks} <= {"bash", "python", "text"}, "a block the docs test would not run"
    assert {b.directive for b in blocks} <= {None, "skip", "stand-in", "python"}


class Session:
    """One terminal: the environment and working directory carried from block to block."""

    def __init__(self, home: Path):
        self.state = home / ".docs-test-state"
        self.state.mkdir()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("FORKLIFT_", "AWS_", "DOCKER_CONFIG", "SAGEMAKER_"))}
        self.env.update(HOME=str(home), SDK_V2_VENV=str(SDK_V2_VENV), PYTHONUNBUFFERED="1",
                        SAGEMAKER_SUPPRESS_V2_WARNING="1")
        self.cwd = ROOT

    def bash(self, script: str) -> subprocess.CompletedProcess:
        env_file, cwd_file = self.state / "env", self.state / "cwd"
        wrapped = (f"set -e\ncd {shlex.quote(str(self.cwd))}\n{script}\n"
                   f"env -0 > {shlex.quote(str(env_file))}\npwd > {shlex.quote(str(cwd_file))}\n")
        result = subprocess.run(["bash", "-c", wrapped], env=self.env, capture_output=True, text=True,
                                timeout=BLOCK_TIMEOUT, check=False)
        if result.returncode == 0:
            self.env = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
            self.cwd = Path(cwd_file.read_text().strip())
        return result

    def python(self, code: str, interpreter: str) -> subprocess.CompletedProcess:
        return subprocess.run([interpreter.replace("~", self.env["HOME"], 1), "-c", code],
                              env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=BLOCK_TIMEOUT,
                              check=False)


def _clean_up(session: Session, home: Path) -> None:
    """Whatever the README left running when a block failed half-way."""
    forklift = [sys.executable, "-m", "forklift"]
    env = {**session.env, "HOME": str(home)}
    env.pop("FORKLIFT_URL", None)
    for endpoint in ("my-endpoint", "sdk-endpoint"):
        subprocess.run([*forklift, "endpoints", "delete", endpoint, "--wait"], env=env, capture_output=True,
                       timeout=120, check=False)
    subprocess.run([*forklift, "server", "stop"], env=env, capture_output=True, timeout=120, check=False)
    subprocess.run([*forklift, "registry", "stop"], env=env, capture_output=True, timeout=60, check=False)
    from fixtures.serve import remove_containers

    remove_containers(home / ".forklift")


def test_readme_runs_as_pasted(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the README's flows run containers with runc: run the tests as root")
    if not SDK_V2_VENV.exists():
        pytest.fail(f"{SDK_V2_VENV} is missing: `make test` installs it (WITH_SDK_V2=1 scripts/setup.sh)")
    busy = [port for port in PORTS if not port_free(port)]
    if busy:
        pytest.fail(f"the README uses ports {PORTS}; {busy} already in use on 127.0.0.1 (stop what listens there)")
    home = tmp_path / "home"
    home.mkdir()
    session = Session(home)
    ran = []
    try:
        for block in readme_blocks():
            if block.lang == "text" or block.directive == "skip":
                continue
            if block.directive == "stand-in":
                result = session.bash(block.argument.split("  (", 1)[0])
            elif block.lang == "bash":
                result = session.bash(block.body)
            else:
                interpreter = block.argument if block.directive == "python" else sys.executable
                result = session.python(block.body, interpreter)
            ran.append(block.line)
            assert result.returncode == 0, (
                f"README.md block at line {block.line} ({block.lang}) failed with {result.returncode}:\n"
                f"{block.body}\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}")
            assert "Traceback" not in result.stderr, f"block at line {block.line} printed a traceback:\n{result.stderr}"
            _check_output(block, result)
    finally:
        _clean_up(session, home)
    assert len(ran) >= 15


def _check_output(block: Block, result: subprocess.CompletedProcess) -> None:
    """What a reader is promised a block prints."""
    out = result.stdout
    if "create_training_job" in block.body:
        assert out.startswith("Completed s3://your-output-data-bucket/model-folder/private-registry-job/"), out
    if "invoke_endpoint" in block.body:
        assert out.strip() == """b'{"predictions": ["setosa", "virginica"]}'""", out
    if "predictor.predict" in block.body:  # the user's inference.py, from the code forklift staged
        predicted = """b'{"predictions": [{"row": [1.0, 1.0], "epochs": 3}, {"row": [4.0, 3.0], "epochs": 3}]}'"""
        assert predicted in out, out
        assert "epoch=3 loss=0.333" in out and "s3://sagemaker-forklift/script-mode/" in out, out
    if "TrainingJobAnalytics" in block.body:
        assert "s3://sagemaker-forklift/" in out and "/output/model.tar.gz" in out, out
        assert "train:accuracy" in out and "1.0" in out, out
    if "aws s3 cp" in block.body:
        assert "sdk/training/train.csv" in out and "upload: reports/sample.csv" in out, out
    if "forklift experiments run" in block.body:
        assert "experiment mnist Completed" in result.stderr and "hello from the workspace" in out, result.stderr
        assert "experiment mnist-2 Completed" in result.stderr
    if "forklift run " in block.body:
        assert "hello from a container" in out
