"""How a failed command ends: the user's mistakes in one line, bugs as an internal error whose
traceback is written to a file, Ctrl-C quietly. In-process, through click's runner."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from forklift.cli import main
from forklift.cli.images import images, ls_command
from forklift.errors import ForkliftError

INTERNAL = re.compile(r"forklift: internal error: (.+); the traceback is in (\S+)\n")


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FORKLIFT_HOME", str(home))
    return home


def failing(monkeypatch, exc: BaseException, command: click.Command = ls_command) -> None:
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(command, "callback", fail)


def test_a_malformed_label_is_a_usage_error_naming_the_option(home, tmp_path):
    (tmp_path / "rootfs").mkdir()
    result = CliRunner().invoke(main, ["images", "build", str(tmp_path / "rootfs"), "-t", "team/app:1",
                                       "--label", "novalue"])
    assert result.exit_code == 2, result.output
    assert "Error: Invalid value for '--label': 'novalue': expected KEY=VALUE" in result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.stderr


@pytest.mark.parametrize("args, option", [
    (["--env", "NOEQUALS"], "--env"),
    (["--platform", "linux"], "--platform"),
    (["--entrypoint", "[not json"], "--entrypoint"),
    (["--cmd", "'unclosed"], "--cmd"),
])
def test_other_malformed_build_options_are_usage_errors(home, tmp_path, args, option):
    (tmp_path / "rootfs").mkdir()
    result = CliRunner().invoke(main, ["images", "build", str(tmp_path / "rootfs"), "-t", "team/app:1", *args])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.stderr
    assert "internal error" not in result.stderr


def test_a_bug_is_an_internal_error_with_the_traceback_in_a_file(home, monkeypatch):
    def buggy_listing(output):
        return 1 / 0

    monkeypatch.setattr(ls_command, "callback", buggy_listing)
    result = CliRunner().invoke(main, ["images", "ls"])
    assert result.exit_code == 70
    match = INTERNAL.fullmatch(result.stderr)
    assert match, result.stderr
    assert match[1] == "ZeroDivisionError: division by zero"
    path = Path(match[2])
    assert path.parent == home / "logs" / "cli-errors"
    text = path.read_text()
    assert "Traceback (most recent call last)" in text and "buggy_listing" in text
    assert text.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "images ls" not in result.stdout


def test_without_a_writable_home_the_traceback_goes_to_a_temporary_file(tmp_path, monkeypatch):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setenv("FORKLIFT_HOME", str(not_a_directory))
    failing(monkeypatch, RuntimeError("unexpected\nsecond line"))
    result = CliRunner().invoke(main, ["images", "ls"])
    assert result.exit_code == 70
    match = INTERNAL.fullmatch(result.stderr)
    assert match, result.stderr
    assert match[1] == "RuntimeError: unexpected …"
    path = Path(match[2])
    try:
        assert "RuntimeError: unexpected" in path.read_text()
    finally:
        path.unlink()


def test_a_forklift_error_is_one_line(home, monkeypatch):
    failing(monkeypatch, ForkliftError("the image is not there; pull it first"))
    result = CliRunner().invoke(main, ["images", "ls"])
    assert (result.exit_code, result.stderr) == (1, "Error: the image is not there; pull it first\n")
    assert not (home / "logs").exists()


def test_a_refused_aws_call_is_code_and_message(home, monkeypatch):
    from botocore.exceptions import ClientError, EndpointConnectionError

    failing(monkeypatch, ClientError({"Error": {"Code": "ValidationException", "Message": "no such job"}}, "Describe"))
    result = CliRunner().invoke(main, ["images", "ls"])
    assert (result.exit_code, result.stderr) == (1, "Error: ValidationException: no such job\n")
    failing(monkeypatch, EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    result = CliRunner().invoke(main, ["images", "ls"])
    assert result.exit_code == 1
    assert result.stderr == 'Error: Could not connect to the endpoint URL: "http://127.0.0.1:1"\n'


def test_the_json_clients_errors_are_code_and_message(home, monkeypatch):
    from forklift.jsonclient import ApiError, Unreachable

    failing(monkeypatch, ApiError(400, "ValidationException", "Requested resource not found."))
    result = CliRunner().invoke(main, ["images", "ls"])
    assert (result.exit_code, result.stderr) == (1, "Error: ValidationException: Requested resource not found.\n")
    failing(monkeypatch, Unreachable("http://127.0.0.1:1", "Connection refused"))
    result = CliRunner().invoke(main, ["images", "ls"])
    assert result.exit_code == 1
    assert result.stderr == ("Error: Unreachable: cannot reach the forklift server at http://127.0.0.1:1: "
                             "Connection refused\n")


def test_ctrl_c_exits_130_quietly(home, monkeypatch):
    failing(monkeypatch, KeyboardInterrupt())
    result = CliRunner().invoke(main, ["images", "ls"])
    assert (result.exit_code, result.output) == (130, "")


def test_clicks_own_errors_pass_through(home, monkeypatch):
    failing(monkeypatch, click.UsageError("give a NAME"))
    result = CliRunner().invoke(main, ["images", "ls"])
    assert result.exit_code == 2 and "Error: give a NAME" in result.stderr


def test_a_group_invoked_on_its_own_reports_the_same_way(home, monkeypatch):
    failing(monkeypatch, ZeroDivisionError("division by zero"))
    result = CliRunner().invoke(images, ["ls"], catch_exceptions=False)
    assert result.exit_code == 70 and INTERNAL.fullmatch(result.stderr), result.stderr
    failing(monkeypatch, ForkliftError("not there"))
    result = CliRunner().invoke(images, ["ls"], catch_exceptions=False)
    assert (result.exit_code, result.stderr) == (1, "Error: not there\n")


def test_a_missing_local_file_is_named(home, tmp_path):
    from forklift.cli.buckets import buckets

    assert CliRunner().invoke(buckets, ["mb", "s3://named"]).exit_code == 0
    result = CliRunner().invoke(buckets, ["cp", str(tmp_path / "missing.csv"), "s3://named/"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot read {tmp_path / 'missing.csv'}: No such file or directory\n"
    (tmp_path / "a-file").write_text("")
    assert CliRunner().invoke(buckets, ["cp", str(tmp_path / "a-file"), "s3://named/k"]).exit_code == 0
    result = CliRunner().invoke(buckets, ["cp", "s3://named/k", str(tmp_path / "a-file" / "below")])
    assert result.exit_code == 1  # a file where a directory would be: "Not a directory" or "File exists"
    assert result.stderr.startswith(f"Error: cannot write {tmp_path / 'a-file' / 'below'}: ")
    assert len(result.stderr.splitlines()) == 1


def test_experiment_options_and_registry_users_are_the_users_to_fix(home, tmp_path):
    from forklift.config import load_settings
    from forklift.experiments.request import parse_pairs
    from forklift.experiments.workspace import upload_workspace

    with pytest.raises(ForkliftError, match="--env 'novalue' is not KEY=VALUE"):
        parse_pairs(("novalue",), "--env")
    with pytest.raises(ForkliftError, match="not a directory"):
        upload_workspace(load_settings(), "exp", tmp_path / "missing")
    result = CliRunner().invoke(main, ["registry", "start", "--user", "a:b"])
    assert result.exit_code == 2 and "Invalid value for '--user'" in result.stderr


def test_serve_names_a_log_file_it_cannot_open(home, tmp_path):
    result = CliRunner().invoke(main, ["serve", "--log-file", str(tmp_path / "no" / "such" / "dir.log")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: Could not open file '{tmp_path / 'no' / 'such' / 'dir.log'}': " \
                            "No such file or directory (--log-file)\n"


def test_an_unreadable_invoke_body_names_the_option(home, tmp_path):
    result = CliRunner().invoke(main, ["endpoints", "invoke", "ep", "--body", f"@{tmp_path / 'missing.json'}",
                                       "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --body: cannot read" in result.stderr and "missing.json" in result.stderr
    assert "internal error" not in result.stderr

