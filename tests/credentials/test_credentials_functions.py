"""Credentials-provider functions: registration, ARNs, invocation in a subprocess, and pulls with them."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from forklift.cancel import Cancel, Cancelled
from forklift.credentials import Credentials
from forklift.credentials.chain import default_keychain
from forklift.credentials.errors import (
    CredentialsError,
    FunctionExists,
    FunctionFailed,
    FunctionNotFound,
    InvalidArn,
)
from forklift.credentials.functionlogs import MAX_BYTES, read_log, record
from forklift.credentials.functions import FunctionRegistry
from forklift.credentials.invoke import credentials_from_response
from forklift.images.pull import pull_sync
from forklift.registry import AuthenticationFailed

ACCOUNT_ARN = "arn:aws:lambda:us-east-1:000000000000:function:{}"


def returns(username: str, password: str) -> str:
    return f'return {{"Credentials": {{"Username": {username!r}, "Password": {password!r}}}}}'


@pytest.fixture
def functions(settings) -> FunctionRegistry:
    return FunctionRegistry(settings)


def test_register_prints_arn_and_lists_shows_deletes(functions, make_handler):
    path = make_handler("prov.py", returns("u", "p"))
    info = functions.register("team-provider", handler=path)
    assert info.arn == ACCOUNT_ARN.format("team-provider")
    assert info.runtime == "python" and info.handler == "handler" and info.timeout == 10.0
    assert [f.name for f in functions.list()] == ["team-provider"]
    assert functions.get(info.arn) == functions.get("team-provider") == info
    assert functions.get(info.arn).describe()["Handler"] == "prov.py:handler"
    with pytest.raises(FunctionExists):
        functions.register("team-provider", handler=path)
    functions.register("team-provider", handler=path, timeout=3, replace=True)
    assert functions.get("team-provider").timeout == 3
    assert functions.delete(info.arn).name == "team-provider"
    assert functions.list() == []


def test_arn_follows_configured_region_and_account(home, make_handler):
    (home / "config.toml").write_text('region = "eu-west-1"\naccount = "111122223333"\n')
    from forklift.config import load_settings

    functions = FunctionRegistry(load_settings())
    info = functions.register("p", handler=make_handler("p.py", returns("u", "p")))
    assert info.arn == "arn:aws:lambda:eu-west-1:111122223333:function:p"


def test_unknown_or_foreign_arns_name_the_expected_arn(functions, make_handler):
    functions.register("mine", handler=make_handler("p.py", returns("u", "p")))
    with pytest.raises(FunctionNotFound) as info:
        functions.get(ACCOUNT_ARN.format("nobody"))
    assert ACCOUNT_ARN.format("nobody") in str(info.value) and "no credentials-provider function" in str(info.value)
    with pytest.raises(FunctionNotFound) as info:
        functions.get("arn:aws:lambda:us-east-1:999999999999:function:mine")
    message = str(info.value)
    assert "account 999999999999" in message and f"expected {ACCOUNT_ARN.format('mine')}" in message
    with pytest.raises(FunctionNotFound) as info:
        functions.get("arn:aws:lambda:eu-central-1:000000000000:function:mine")
    assert f"expected {ACCOUNT_ARN.format('mine')}" in str(info.value)
    with pytest.raises(InvalidArn):
        functions.get("arn:aws:s3:::bucket")
    assert functions.get(ACCOUNT_ARN.format("mine") + ":$LATEST").name == "mine"


def test_handler_file_is_checked_at_registration(functions, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def handler(event, context:\n")
    with pytest.raises(CredentialsError, match="syntax error"):
        functions.register("b", handler=broken)
    other = tmp_path / "other.py"
    other.write_text("def provide(event, context):\n    return {}\n")
    with pytest.raises(CredentialsError, match="defines no function 'handler'"):
        functions.register("o", handler=other)
    assert functions.register("o", handler=f"{other}:provide").handler == "provide"
    with pytest.raises(CredentialsError, match="cannot read"):
        functions.register("m", handler=tmp_path / "missing.py")


def test_handler_gets_the_event_a_context_and_a_clean_environment(functions, make_handler, monkeypatch):
    monkeypatch.setenv("FORKLIFT_PARENT_ONLY", "must-not-leak")
    path = make_handler("env.py", """
        assert "FORKLIFT_PARENT_ONLY" not in os.environ, "parent environment leaked"
        assert "FORKLIFT_HOME" not in os.environ
        assert event == {"registry": "r.example:5000", "repository": "team/app", "image": "r.example:5000/team/app:1"}
        assert context.function_name == "envcheck"
        assert context.invoked_function_arn.endswith(":function:envcheck")
        assert 0 < context.get_remaining_time_in_millis() <= 10000
        assert os.environ["AWS_LAMBDA_FUNCTION_NAME"] == "envcheck"
        print("this goes to the log, not into the answer")
        return {"Credentials": {"Username": "u", "Password": "p"}}
    """)
    functions.register("envcheck", handler=path)
    found = functions.credentials("envcheck", "r.example:5000", "team/app", "r.example:5000/team/app:1")
    assert found == Credentials("u", "p")
    result = functions.invoke("envcheck", {"registry": "r.example:5000", "repository": "team/app",
                                           "image": "r.example:5000/team/app:1"})
    assert "this goes to the log" in result.log


def test_scratch_directory_lies_in_the_home_named_by_the_invoker_and_goes_away(functions, settings, make_handler):
    """Under FORKLIFT_HOME/tmp and named by our pid, so what a killed invoker leaves is found and swept."""
    path = make_handler("scratch.py", 'return {"Credentials": {"Username": os.environ["TMPDIR"], "Password": "p"}}')
    functions.register("scratch", handler=path)
    scratch = functions.invoke("scratch", {}).response["Credentials"]["Username"]
    assert os.path.dirname(scratch) == str(settings.tmp_dir)
    assert os.path.basename(scratch).startswith(f"forklift-fn-{os.getpid()}-")
    assert not os.path.exists(scratch)


@pytest.mark.parametrize("body, expected", [
    ("raise ValueError('vault is sealed')", "raised ValueError (details: `forklift functions logs bad` on the server)"),
    ("time.sleep(30)", "timed out after 1 s"),
    ("return 'not a dict'", "returned a string; expected"),
    ("return {'Creds': {}}", "whose \"Credentials\" is missing (keys: Creds)"),
    ("return {'Credentials': {'Username': 'u'}}", "Credentials.Password that is missing"),
    ("return {'Credentials': {'Username': 'u', 'Password': 42}}", "Credentials.Password that is a number"),
    ("return {'Credentials': {'Username': '', 'Password': 'p'}}", "Credentials.Username that is empty"),
    ("return {'Credentials': {'Username': 'u', 'Password': {1, 2}}}", "returned a value that is not JSON"),
    ("os._exit(7)", "exited with status 7 without answering"),
    ("sys.exit(3)", "raised SystemExit (details"),
])
def test_bad_handlers_give_clear_errors(functions, make_handler, body, expected):
    functions.register("bad", handler=make_handler("bad.py", body), timeout=1)
    started = time.monotonic()
    with pytest.raises(FunctionFailed) as info:
        functions.credentials("bad", "r.example", "team/app")
    message = str(info.value)
    assert expected in message, message
    assert ACCOUNT_ARN.format("bad") in message
    assert time.monotonic() - started < 8


def test_wrong_shape_never_quotes_the_returned_password(functions, make_handler, secrets_registry):
    secret = "pw-that-must-not-show-4411"
    secrets_registry.register("a wrongly shaped provider answer's password", secret)
    for i, body in enumerate([
        f"return {{'Credentials': {{'Password': {secret!r}}}}}",
        f"return {{'Credentials': {secret!r}}}",
        f"return {{{secret!r}: 1}}",
        f"return [{secret!r}]",
    ]):
        functions.register(f"shape{i}", handler=make_handler(f"shape{i}.py", body))
        with pytest.raises(FunctionFailed) as info:
            functions.credentials(f"shape{i}", "r.example", "team/app")
        assert secret not in str(info.value)
    assert secret not in str(credentials_from_response("arn", {"Credentials": {"Username": "u", "Password": secret}}))


def test_timeout_kills_the_whole_process_group(functions, tmp_path):
    marker = tmp_path / "survivor"
    script = tmp_path / "slow.sh"
    script.write_text(f"#!/bin/sh\n(sleep 2; touch {marker}) &\nsleep 30\n")
    script.chmod(0o755)
    functions.register("slow", command=str(script), timeout=0.5)
    with pytest.raises(FunctionFailed, match="timed out after 0.5 s"):
        functions.credentials("slow", "r.example", "team/app")
    time.sleep(2.5)
    assert not marker.exists(), "a child of the timed-out provider kept running"


def test_exec_program_reads_event_on_stdin(functions, tmp_path, monkeypatch):
    program = tmp_path / "provider.sh"
    program.write_text('#!/bin/sh\nread -r event\n'
                       'case "$event" in *team/app*) ;; *) echo "bad event" >&2; exit 4;; esac\n'
                       'test -z "$FORKLIFT_PARENT_ONLY" || exit 5\n'
                       'echo \'{"Credentials": {"Username": "svc", "Password": "from-exec"}}\'\n')
    program.chmod(0o755)
    monkeypatch.setenv("FORKLIFT_PARENT_ONLY", "x")
    info = functions.register("exec-prov", command=f"{program} --flag")
    assert info.runtime == "exec" and info.describe()["Handler"] == str(program)
    assert functions.credentials(info.arn, "r.example", "team/app") == Credentials("svc", "from-exec")
    with pytest.raises(FunctionFailed, match=r"status 4 \(details: `forklift functions logs exec-prov`") as failed:
        functions.credentials(info.arn, "r.example", "other/repo")
    assert "bad event" not in str(failed.value)  # the program's stderr is in its log, not the error


@pytest.mark.parametrize("script, expected", [
    ("echo not json at all", "printed output that is not JSON"),
    ("true", "printed nothing on stdout"),
    ("echo '[1, 2]'", "returned a list"),
])
def test_exec_junk_is_a_clear_error(functions, tmp_path, script, expected):
    program = tmp_path / "junk.sh"
    program.write_text(f"#!/bin/sh\ncat >/dev/null\n{script}\n")
    program.chmod(0o755)
    functions.register("junk", command=str(program))
    with pytest.raises(FunctionFailed, match=expected):
        functions.credentials("junk", "r.example", "team/app")


def test_exec_command_must_exist(functions):
    with pytest.raises(CredentialsError, match="not on PATH"):
        functions.register("x", command="no-such-program-here --x")
    assert functions.register("x", command="true").describe()["Handler"].endswith("/true")


def test_code_is_stored_encrypted(functions, make_handler, home):
    marker = "embedded-secret-7c1d2e"
    functions.register("embedded", handler=make_handler("embedded.py", returns("u", marker)))
    for path in home.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), path
    assert functions.credentials("embedded", "r", "x").password == marker


def test_provider_function_pulls_a_private_image_with_bearer_auth(settings, store, functions, make_handler,
                                                                  pushed, token_registry, token_server):
    log = settings.home.parent / "provider-calls.log"
    path = make_handler("good.py", f"""
        with open({str(log)!r}, "a") as f:
            f.write(json.dumps(event) + "\\n")
        return {{"Credentials": {{"Username": {token_registry.username!r}, "Password": {token_registry.password!r}}}}}
    """)
    arn = functions.register("token-provider", handler=path).arn
    keychain = default_keychain(settings, function_arn=arn, image=pushed.token,
                                role_arn="arn:aws:iam::000000000000:role/any")
    result = pull_sync(pushed.token, store, keychain=keychain)
    assert result.image.digest == pushed.digest
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events == [{"registry": token_registry.address, "repository": "private/creds-busybox",
                       "image": pushed.token}]  # asked once, then cached by the keychain
    assert token_server.fetches()[0].username == token_registry.username


def test_provider_function_with_wrong_password_fails_without_showing_it(settings, store, functions, make_handler,
                                                                        pushed, private_registry):
    wrong = "wrong-provider-password-93af"
    arn = functions.register("wrong", handler=make_handler("wrong.py", returns(private_registry.username, wrong))).arn
    keychain = default_keychain(settings, function_arn=arn)
    with pytest.raises(AuthenticationFailed) as info:
        pull_sync(pushed.private, store, keychain=keychain)
    assert f"failed for user {private_registry.username}" in str(info.value)
    assert wrong not in str(info.value)


def test_default_keychain_rejects_an_unknown_function_up_front(settings):
    with pytest.raises(FunctionNotFound, match="expected ARN"):
        default_keychain(settings, function_arn=ACCOUNT_ARN.format("never-registered"))


def test_functions_survive_in_the_database_not_the_process(settings, make_handler):
    FunctionRegistry(settings).register("persisted", handler=make_handler("p.py", returns("u", "p")))
    again = FunctionRegistry(replace(settings))
    assert again.credentials("persisted", "r", "x") == Credentials("u", "p")
    assert os.stat(settings.home / "secret.key").st_mode & 0o777 == 0o600


def test_functions_cli(cli, home, make_handler, tmp_path):
    path = make_handler("prov.py", 'return {"Credentials": {"Username": "svc", "Password": "cli-secret-2231"}}')
    arn = cli("functions", "register", "cli-prov", "--handler", f"{path}:handler").stdout.strip()
    assert arn == ACCOUNT_ARN.format("cli-prov")
    program = tmp_path / "prov.sh"
    program.write_text("#!/bin/sh\necho '{\"Credentials\": {\"Username\": \"e\", \"Password\": \"exec-secret-88\"}}'\n")
    program.chmod(0o755)
    cli("functions", "register", "exec-prov", "--exec", f"{program} --team ml", "--timeout", "5")
    listing = cli("functions", "list").stdout
    assert "cli-prov" in listing and "exec-prov" in listing and arn in listing and "5s" in listing
    shown = json.loads(cli("functions", "show", arn).stdout)
    assert shown["FunctionArn"] == arn and shown["Handler"] == "prov.py:handler" and shown["Runtime"] == "python"
    invoked = cli("functions", "invoke", "exec-prov", "--event", '{"registry": "r", "repository": "x", "image": "r/x"}')
    assert json.loads(invoked.stdout) == {"Credentials": {"Username": "e", "Password": "********"}}
    assert "exec-secret-88" not in invoked.stdout + invoked.stderr

    missing = cli("functions", "invoke", ACCOUNT_ARN.format("ghost"), "--image", "r.example/x:1", check=False)
    assert missing.returncode == 1 and f"expected ARN {ACCOUNT_ARN.format('ghost')}" in missing.stderr
    foreign = cli("functions", "show", "arn:aws:lambda:us-east-1:123456789012:function:cli-prov", check=False)
    assert foreign.returncode == 1 and f"expected {arn}" in foreign.stderr
    usage = cli("functions", "register", "neither", check=False)
    assert usage.returncode == 2 and "exactly one of --handler" in usage.stderr

    bad = make_handler("bad.py", "raise RuntimeError('registry vault unreachable')")
    cli("functions", "register", "bad-prov", "--handler", str(bad))
    failed = cli("functions", "invoke", "bad-prov", "--image", "r.example/x:1", check=False)
    assert failed.returncode == 1
    assert f"Error: function {ACCOUNT_ARN.format('bad-prov')} raised RuntimeError (details: " \
           "`forklift functions logs bad-prov` on the server)" in failed.stderr
    assert "Traceback" not in failed.stderr and "registry vault unreachable" not in failed.stderr
    with_log = cli("functions", "invoke", "bad-prov", "--image", "r.example/x:1", "--log", check=False)
    assert with_log.returncode == 1 and 'bad.py", line' in with_log.stderr  # the function's own traceback
    logs = cli("functions", "logs", "bad-prov").stdout
    assert "failed: RuntimeError: registry vault unreachable" in logs and 'bad.py", line' in logs
    assert "registry=r.example" in logs and "image=r.example/x:1" in logs
    assert cli("functions", "logs", ACCOUNT_ARN.format("bad-prov"), "--tail", "1").stdout.strip() == \
        "RuntimeError: registry vault unreachable"
    log_file = home / "functions" / "logs" / "bad-prov.log"
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert "has logged nothing" in cli("functions", "logs", "cli-prov").stderr
    assert cli("functions", "logs", "../etc/passwd", check=False).returncode == 1

    assert cli("functions", "delete", "cli-prov").stdout.strip() == f"Deleted {arn}"
    assert "cli-prov" not in cli("functions", "list").stdout


def test_a_failing_providers_words_stay_in_its_log(functions, make_handler, home):
    """The probe: an exception message holding a token must not reach whoever called."""
    body = "raise RuntimeError('vault unreachable: token hunter2-SECRET')"
    functions.register("vault", handler=make_handler("vault.py", body))
    with pytest.raises(FunctionFailed) as info:
        functions.credentials("vault", "r.example", "team/app")
    message = str(info.value)
    assert "hunter2-SECRET" not in message
    assert ACCOUNT_ARN.format("vault") in message and "raised RuntimeError" in message
    assert "forklift functions logs vault" in message
    log = read_log(home / "functions" / "logs" / "vault.log")
    assert "RuntimeError: vault unreachable: token hunter2-SECRET" in log and "Traceback" in log


def test_function_logs_are_bounded(home):
    path = home / "functions" / "logs" / "chatty.log"
    for _ in range(3):
        record(path, "failed: X", "y" * (MAX_BYTES // 2 + 10))
    rotated = path.with_name("chatty.log.1")
    assert rotated.exists() and path.stat().st_size + rotated.stat().st_size <= 3 * MAX_BYTES
    assert read_log(path, tail=1).strip().startswith("y")


def test_a_stop_kills_a_running_provider_and_its_children(functions, tmp_path):
    marker, started = tmp_path / "survivor", tmp_path / "started"
    script = tmp_path / "stuck.sh"
    script.write_text(f'#!/bin/sh\necho "$HOME" > {started}\n(sleep 2; touch {marker}) &\nsleep 30\n')
    script.chmod(0o755)
    functions.register("stuck", command=str(script), timeout=60)
    cancel = Cancel(check=lambda: started.exists() and started.read_text().strip() != "", every=0.05)
    with pytest.raises(Cancelled, match="stuck was stopped"):
        functions.credentials("stuck", "r.example", "team/app", cancel=cancel)
    workdir = Path(started.read_text().strip())
    assert workdir.name.startswith("forklift-fn-") and not workdir.exists()  # its private HOME is gone
    time.sleep(2.5)
    assert not marker.exists(), "a child of the stopped provider kept running"
