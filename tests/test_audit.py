"""The audit log on disk (`forklift.audit`) and `forklift audit`, with real processes and the real CLI:
concurrent appenders leave whole lines, the files are private, a corrupt line is reported and skipped,
and the CLI's local commands that change who may do what are recorded without their secrets."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from forklift.audit import AuditLog, CorruptLine, local_principal, now_iso, read

FORKLIFT = [sys.executable, "-m", "forklift"]
APPENDER = """
import sys
from pathlib import Path
from forklift.audit import AuditLog
log, who = AuditLog(Path(sys.argv[1])), sys.argv[2]
for n in range(int(sys.argv[3])):
    log.append({"event": "api", "principal": who, "operation": "CreateModel", "n": n, "pad": "x" * (n % 7 * 1500)})
"""


def forklift(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "FORKLIFT_DATABASE_URL"}
    return subprocess.run([*FORKLIFT, *args], capture_output=True, text=True, timeout=60,
                          env={**env, "FORKLIFT_HOME": str(home), "HOME": str(home)})


def lines(home: Path) -> list[str]:
    return [line for path in sorted((home / "audit").glob("*.jsonl")) for line in path.read_text().splitlines()]


def test_two_processes_appending_at_once_leave_only_whole_lines(tmp_path):
    count = 400
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), who, str(count)])
               for who in ("first", "second")]
    assert [w.wait(120) for w in writers] == [0, 0]
    records = [json.loads(line) for line in lines(tmp_path)]  # a torn or interleaved line would not parse
    for who in ("first", "second"):
        assert sorted(r["n"] for r in records if r["principal"] == who) == list(range(count))


def test_the_directory_and_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        AuditLog(tmp_path / "home").append({"event": "local", "principal": "p", "operation": "PutRole"})
    finally:
        os.umask(old)
    directory = tmp_path / "home" / "audit"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [path] = directory.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.name == f"{datetime.now(UTC).date()}.jsonl"


def test_read_reports_a_corrupt_line_and_goes_on(tmp_path):
    log = AuditLog(tmp_path)
    log.append({"principal": "a", "operation": "CreateModel"})
    day = next((tmp_path / "audit").iterdir())
    with open(day, "a") as f:
        f.write('{"principal": "torn\n[1, 2]\n')
    log.append({"principal": "b", "operation": "DeleteModel"})
    found = list(read(tmp_path))
    assert [e["principal"] if isinstance(e, dict) else e.number for e in found] == ["a", 2, 3, "b"]
    assert all(e.path == day for e in found if isinstance(e, CorruptLine))


def test_audit_filters_by_time_and_principal_and_survives_a_corrupt_line(tmp_path):
    log = AuditLog(tmp_path)
    old = now_iso(datetime.now(UTC) - timedelta(hours=3))
    ci = "arn:aws:iam::000000000000:user/ci"
    log.append({"time": old, "event": "api", "principal": ci, "operation": "CreateModel", "outcome": "ok"})
    log.append({"event": "api", "principal": ci, "operation": "CreateEndpoint", "outcome": "ok",
                "access_key_id": "FKIAEXAMPLE", "resource": "arn:aws:sagemaker:us-east-1:000000000000:endpoint/e"})
    log.append({"event": "api", "principal": "arn:aws:iam::000000000000:user/other", "operation": "DeleteModel",
                "outcome": "AccessDeniedException"})
    with open(tmp_path / "audit" / f"{datetime.now(UTC).date()}.jsonl", "a") as f:
        f.write("not json\n")

    shown = forklift(tmp_path, "audit", "--since", "1h", "--principal", "ci")
    assert shown.returncode == 0, shown.stderr
    assert "CreateEndpoint" in shown.stdout and "endpoint/e" in shown.stdout
    assert "CreateModel" not in shown.stdout and "DeleteModel" not in shown.stdout  # too old; someone else
    assert "skipped line" in shown.stderr and "not an audit record" in shown.stderr

    as_json = forklift(tmp_path, "audit", "--json", "--since", (datetime.now() - timedelta(hours=4)).isoformat())
    assert [json.loads(line)["operation"] for line in as_json.stdout.splitlines()] == [
        "CreateModel", "CreateEndpoint", "DeleteModel"]
    by_id = forklift(tmp_path, "audit", "--json", "--principal", "FKIAEXAMPLE")
    assert [json.loads(line)["operation"] for line in by_id.stdout.splitlines()] == ["CreateEndpoint"]


@pytest.mark.parametrize("since", ["yesterday", "1y", "2026-13-01"])
def test_a_since_that_is_no_time_is_a_usage_error(tmp_path, since):
    result = forklift(tmp_path, "audit", "--since", since)
    assert result.returncode == 2 and "--since" in result.stderr and "ISO 8601" in result.stderr


def test_keys_and_roles_commands_are_recorded_as_the_local_user_without_secrets(tmp_path):
    created = forklift(tmp_path, "keys", "create", "--name", "ci")
    assert created.returncode == 0, created.stderr
    values = dict(line.split("=", 1) for line in created.stdout.splitlines())
    key, secret = values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]}))
    assert forklift(tmp_path, "roles", "put", "trainer", "--policy", str(policy)).returncode == 0
    assert forklift(tmp_path, "roles", "delete", "trainer").returncode == 0
    assert forklift(tmp_path, "keys", "delete", "ci").returncode == 0
    assert forklift(tmp_path, "keys", "delete", "ci").returncode == 1  # no longer there: recorded as failed

    records = [json.loads(line) for line in lines(tmp_path)]
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("CreateAccessKey", "ok"), ("PutRole", "ok"), ("DeleteRole", "ok"), ("DeleteAccessKey", "ok"),
        ("DeleteAccessKey", "AccessKeyNotFound")]
    assert {r["principal"] for r in records} == {local_principal()}
    assert records[0]["resource"] == key and records[1]["resource"].endswith(":role/trainer")
    assert secret not in "\n".join(lines(tmp_path))
