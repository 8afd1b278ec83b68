"""The main job, as `make demo` runs it: every step must pass on this machine."""

import os
import subprocess
import sys


def test_demo_runs_end_to_end(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["FORKLIFT_HOME"] = str(tmp_path / "unused-home")
    result = subprocess.run([sys.executable, "-m", "forklift", "demo"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Timing summary:" in result.stdout
    assert "train accuracy: 1.000" in result.stdout
    assert "Completed" in result.stdout
    assert result.stdout.count("train accuracy: 1.000") == 2  # the boto3 job and the experiment
    assert '["setosa", "virginica", "setosa"]' in result.stdout  # the endpoint's predictions
