"""The `forklift` command as a newcomer and a script meet it: help, aliases, config.toml checks,
instance types, the background server, the local registry, `ps`, and what `forklift serve` prints.

Every test drives the real command in a subprocess with its own FORKLIFT_HOME and DOCKER_CONFIG.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from fixtures.serve import free_port, provider_source
from forklift.cli import COMMANDS, main

FORKLIFT = [sys.executable, "-m", "forklift"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home, docker = tmp_path / "home", tmp_path / "docker"
    home.mkdir()
    docker.mkdir()
    values = {k: v for k, v in os.environ.items() if k not in ("FORKLIFT_URL", "AWS_ENDPOINT_URL_SAGEMAKER")}
    return {**values, "FORKLIFT_HOME": str(home), "DOCKER_CONFIG": str(docker)}


def forklift(env: dict[str, str], *args: str, input: str | None = None, timeout: float = 120):
    return subprocess.run([*FORKLIFT, *args], capture_output=True, text=True, env=env, input=input,
                          timeout=timeout, check=False)


def home_of(env: dict[str, str]) -> Path:
    return Path(env["FORKLIFT_HOME"])


# -- help and aliases ------------------------------------------------------------------------


def test_help_lists_every_command_with_its_own_summary():
    """`forklift --help` imports no command; the summaries it shows are each command's own."""
    ctx = click.Context(main)
    for name, (_, summary) in COMMANDS.items():
        assert main.get_command(ctx, name).get_short_help_str(limit=1000) == summary, name
    result = subprocess.run([*FORKLIFT, "--help"], capture_output=True, text=True, check=True)
    assert all(name in result.stdout for name in COMMANDS)
    script = ("import sys, forklift.cli\n"
              "try:\n    forklift.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('boto3', 'botocore', 'sqlalchemy', 'httpx', 'rich') if m in sys.modules))")
    heavy = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert heavy.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("group", ["jobs", "endpoints", "models", "experiments", "images", "functions", "roles",
                                   "buckets", "catalog", "config", "server", "registry", "samples"])
def test_ls_and_list_both_work(group: str):
    ctx = click.Context(main)
    command = main.get_command(ctx, group)
    listing = command.get_command(ctx, "list") or command.get_command(ctx, "ls")
    if listing is None:
        assert command.get_command(ctx, "ls") is None  # a group with no listing has neither
        return
    assert command.get_command(ctx, "ls") is listing and command.get_command(ctx, "list") is listing


# -- config.toml -----------------------------------------------------------------------------


def test_config_check_names_the_file_the_key_and_the_fix(env):
    config = home_of(env) / "config.toml"
    config.write_text('insecure_registry = ["localhost:5000"]\ninsecure_registries = ["https://host:5000"]\n'
                      "[capacity]\ncpu = 2\n")
    result = forklift(env, "config", "check")
    assert result.returncode == 1
    assert f"{config} has 3 problems" in result.stderr
    assert "unknown key insecure_registry: did you mean insecure_registries?" in result.stderr
    assert '"https://host:5000" is a URL, and registries are named host[:port]: write "host:5000"' in result.stderr
    assert "unknown key capacity.cpu: did you mean capacity.cpus?" in result.stderr
    assert "Traceback" not in result.stderr

    serve = forklift(env, "serve", "--port", "0", timeout=60)
    assert serve.returncode == 1 and "did you mean insecure_registries" in serve.stderr
    assert not (home_of(env) / "server.json").exists()

    config.write_text('insecure_registries = ["host:5000"]\ns3_endpoint_url = "http://127.0.0.1:9000"\n'
                      "[inference]\nstop_grace_seconds = 3\n")
    good = forklift(env, "config", "check")
    assert good.returncode == 0, good.stderr
    assert "OK (3 keys set)" in good.stdout and "s3_endpoint_url  (read at each use: no restart needed)" in good.stdout
    assert "restart it after a change" in good.stdout

    config.write_text("stop_grace_seconds = -1\n")
    negative = forklift(env, "config", "check")
    assert negative.returncode == 1 and "stop_grace_seconds = -1: must be a number from 0 to 86400" in negative.stderr
    # TOML has nan and inf: neither is a timeout, an interval or a size.
    config.write_text("[inference]\nhealth_check_interval_seconds = nan\n[capacity]\nmemory_gib = inf\n")
    unbounded = forklift(env, "config", "check")
    assert unbounded.returncode == 1 and "Traceback" not in unbounded.stderr
    assert "inference.health_check_interval_seconds = NaN: must be a number" in unbounded.stderr
    assert "capacity.memory_gib = Infinity: must be a number" in unbounded.stderr


def test_config_keys_lists_every_key_with_its_restart_rule(env):
    result = forklift(env, "config", "keys", "-o", "json")
    keys = {k["Key"]: k for k in json.loads(result.stdout)["Keys"]}
    assert {"region", "insecure_registries", "capacity.cpus", "inference.stop_grace_seconds"} <= set(keys)
    assert keys["s3_endpoint_url"]["RestartServer"] is False and keys["region"]["RestartServer"] is True


# -- instance types --------------------------------------------------------------------------


def test_instance_types_lists_the_apis_table_and_what_this_machine_gives(env):
    result = forklift(env, "instance-types", "--training", "-o", "json")
    assert result.returncode == 0, result.stderr
    types = {t["InstanceType"]: t for t in json.loads(result.stdout)["InstanceTypes"]}
    assert "ml.c7i.large" in types and "ml.t2.medium" not in types
    p3 = types["ml.p3.2xlarge"]
    assert (p3["VCpu"], p3["MemoryGiB"], p3["Gpus"]) == (8, 61, 1)
    assert p3["Here"]["Clamped"] and p3["Here"]["VCpu"] <= os.cpu_count()
    hosting = forklift(env, "instance-types", "--hosting", "--family", "t2")
    assert hosting.returncode == 0 and "ml.t2.medium" in hosting.stdout and "hosting" in hosting.stdout
    assert forklift(env, "instance-types", "--family", "zz").returncode == 1


# -- the server in the background, and what it prints ------------------------------------------


def test_server_start_status_stop_and_ps(env):
    port = free_port()
    assert forklift(env, "server", "status").returncode == 1
    started = forklift(env, "server", "start", "--port", str(port), timeout=90)
    try:
        assert started.returncode == 0, started.stderr
        url = f"http://127.0.0.1:{port}"
        assert started.stdout.strip() == url
        again = forklift(env, "server", "start", "--port", str(port))
        assert again.returncode == 0 and "already running" in again.stderr
        status = forklift(env, "server", "status", "-o", "json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["Running"] and info["Answering"] and info["Url"] == url
        assert info["Log"] == str(home_of(env) / "server.log")
        ps = forklift(env, "ps", "-o", "json")
        assert ps.returncode == 0, ps.stderr
        rows = json.loads(ps.stdout)["Processes"]
        assert rows[0]["Kind"] == "server" and rows[0]["Name"] == url and rows[0]["Pid"] == info["Pid"]
        listed = forklift(env, "jobs", "list")  # found through server.json
        assert listed.returncode == 0 and listed.stdout.split() == ["NAME", "STATUS", "SECONDARY", "CREATED", "ENDED"]
    finally:
        stopped = forklift(env, "server", "stop", timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert forklift(env, "server", "status").returncode == 1
    assert "forklift serving on" in (home_of(env) / "server.log").read_text()


def test_serve_prints_state_changes_requests_with_v_and_a_clean_stop(env, tmp_path, secrets_registry):
    password = "s3rv3-l0g-hygiene-Pa55"
    handler = tmp_path / "provider.py"
    secrets_registry.register("the serve-log provider's password", password)
    secrets_registry.register_input(handler)
    handler.write_text(provider_source("alice", password))
    assert forklift(env, "functions", "register", "creds", "--handler", str(handler)).returncode == 0
    server = subprocess.Popen([*FORKLIFT, "serve", "--port", "0", "-v"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        record = home_of(env) / "server.json"
        for _ in range(300):
            if record.exists():
                break
            time.sleep(0.05)
        url = json.loads(record.read_text())["url"]
        import boto3

        sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id="a",
                          aws_secret_access_key="b")
        # An image on a port nothing listens on: the job fails at the pull, quickly.
        sm.create_training_job(
            TrainingJobName="printed", RoleArn="arn:aws:iam::000000000000:role/R",
            AlgorithmSpecification={"TrainingImage": f"127.0.0.1:{free_port()}/team/img:1", "TrainingInputMode": "File",
                                    "TrainingImageConfig": {"TrainingRepositoryAccessMode": "Vpc",
                                                            "TrainingRepositoryAuthConfig": {
                                                                "TrainingRepositoryCredentialsProviderArn":
                                                                    "arn:aws:lambda:us-east-1:000000000000:function:creds"}}},
            VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]},
            OutputDataConfig={"S3OutputPath": "s3://out/x"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 60})
        for _ in range(120):  # it fails: the image's registry does not answer
            if sm.describe_training_job(TrainingJobName="printed")["TrainingJobStatus"] == "Failed":
                break
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "training job printed: InProgress / Starting" in err
    assert "training job printed: Failed / Failed:" in err
    assert '"POST / HTTP/1.1" 200' in err  # -v: a line per request
    assert "stopped; running jobs and endpoints keep their containers" in err
    assert "Aborted!" not in err + out and "Traceback" not in err
    assert password not in err + out


# -- the local registry ----------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_registry_start_push_pull_status_stop(env, auth):
    port = free_port()
    started = forklift(env, "registry", "start", "--port", str(port), "--auth", auth, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        address = f"localhost:{port}"
        assert started.stdout.strip() == address
        password = forklift(env, "registry", "password").stdout.strip()
        assert len(password) >= 20 and password not in started.stdout + started.stderr
        assert (home_of(env) / "certs.d" / address / "ca.crt").exists()
        saved = json.loads((Path(env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"]
        assert f"https://{address}" in saved or address in saved
        status = forklift(env, "registry", "status", "-o", "json")
        assert status.returncode == 0 and json.loads(status.stdout)["Auth"] == auth
        assert password not in status.stdout
        if auth == "token":
            _token_server_refuses_cleanly(json.loads(status.stdout)["TokenServer"], home_of(env), password)

        pushed = forklift(env, "samples", "push", f"{address}/team", timeout=180)
        assert pushed.returncode == 0, pushed.stderr
        assert f"{address}/team/my-training-image:1.0 sha256:" in pushed.stdout
        assert forklift(env, "images", "rm", f"{address}/team/my-training-image:1.0").returncode == 0
        pulled = forklift(env, "images", "pull", f"{address}/team/my-training-image:1.0", timeout=120)
        assert pulled.returncode == 0, pulled.stderr  # with the saved password, no flags

        refused = forklift(env, "images", "push", f"{address}/team/my-training-image:1.0", f"{address}/team/copy:1",
                           "-u", "forklift", "--password-stdin", input="wrong-password\n")
        assert refused.returncode == 1 and "authentication to" in refused.stderr
        assert "wrong-password" not in refused.stderr
        assert not (home_of(env) / "registry" / "data" / "docker" / "registry" / "v2" / "repositories" / "team" /
                    "copy").exists()  # refused before any upload
    finally:
        stopped = forklift(env, "registry", "stop", timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert forklift(env, "registry", "status").returncode == 1


def _token_server_refuses_cleanly(realm: str, home: Path, password: str) -> None:
    """Wrong, over-long (bcrypt takes 72 bytes) and malformed credentials get an answer, not a dropped connection."""
    import ssl

    import httpx

    ca = ssl.create_default_context(cafile=str(home / "registry" / "pki" / "ca.crt"))
    form = {"grant_type": "password", "service": "forklift-local-registry", "client_id": "test",
            "scope": "repository:team/x:pull"}
    for user, secret in (("forklift", "wrong"), ("forklift", "x" * 80), ("nobody", password)):
        answer = httpx.post(realm, data={**form, "username": user, "password": secret}, verify=ca, timeout=10)
        assert answer.status_code == 401, (user, answer.status_code)
    assert httpx.post(realm, data={"grant_type": "refresh_token"}, verify=ca, timeout=10).status_code == 400
    assert httpx.post(realm, content=b"x" * 70_000, verify=ca, timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 413
    granted = httpx.post(realm, data={**form, "username": "forklift", "password": password}, verify=ca, timeout=10)
    assert granted.status_code == 200 and granted.json()["expires_in"] == 300
    anonymous = httpx.get(realm, params={"scope": "repository:team/x:pull"}, verify=ca, timeout=10)
    assert anonymous.status_code == 200  # a token that grants nothing, as the protocol says


def test_stop_commands_never_signal_a_process_that_reused_a_recorded_pid(env):
    """After a crash or a reboot, server.json and the registry's state.json may name a pid that another
    process has now: `stop` leaves it alone."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        home = home_of(env)
        (home / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": bystander.pid,
                                                      "pid_start": 1, "started": 0}))
        (home / "registry").mkdir()
        (home / "registry" / "state.json").write_text(json.dumps({
            "port": free_port(), "auth": "token", "user": "forklift", "pid": bystander.pid, "pid_start": 1,
            "token_pid": bystander.pid, "token_pid_start": 1, "token_port": free_port()}))
        server = forklift(env, "server", "stop")
        assert server.returncode == 0 and "no forklift server was running" in server.stderr
        assert forklift(env, "server", "status").returncode == 1
        registry = forklift(env, "registry", "stop")
        assert registry.returncode == 0, registry.stderr
        time.sleep(0.2)
        assert bystander.poll() is None, "a stop signalled a process that is not forklift's"
    finally:
        bystander.kill()
        bystander.wait()


def test_samples_data_is_csv(env):
    result = forklift(env, "samples", "data", "--rows", "10")
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 10
    assert all(len(line.split(",")) == 3 for line in lines)
