"""When no server answers FORKLIFT_URL, the experiments CLI starts one for the current FORKLIFT_HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from experiments_support import free_port


def test_experiments_start_a_server_when_none_answers(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    url = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, FORKLIFT_HOME=str(home), FORKLIFT_URL=url, DOCKER_CONFIG=str(tmp_path))
    pid = None
    try:
        first = subprocess.run([sys.executable, "-m", "forklift", "experiments", "list"], capture_output=True,
                               text=True, env=env, timeout=90, check=False)
        if (home / "server.json").exists():
            pid = json.loads((home / "server.json").read_text())["pid"]
        assert first.returncode == 0, first.stderr
        assert f"No forklift server answered at {url}: started one in the background" in first.stderr
        assert str(home / "server.log") in first.stderr
        assert "NAME" in first.stdout
        assert json.loads((home / "server.json").read_text())["url"] == url
        second = subprocess.run([sys.executable, "-m", "forklift", "experiments", "list"], capture_output=True,
                                text=True, env=env, timeout=60, check=False)
        assert second.returncode == 0 and "started" not in second.stderr  # the same server answers now
    finally:
        if pid is not None:  # the server this test caused to start, by its pid
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)


def test_experiments_only_start_a_loopback_http_server(tmp_path):
    """A URL the CLI cannot start a server at (here https://, which `forklift serve` does not speak)
    is an error naming it; the test sends nothing beyond loopback."""
    url = f"https://127.0.0.1:{free_port()}"
    env = dict(os.environ, FORKLIFT_HOME=str(tmp_path), FORKLIFT_URL=url)
    result = subprocess.run([sys.executable, "-m", "forklift", "experiments", "list"], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode != 0
    assert f"no forklift server answers at {url}" in result.stderr
    assert "only a loopback http:// URL is started automatically" in result.stderr
