"""The suite's secret scan (tests/fixtures/secretscan.py) finds what it is meant to find, and says where
without saying what."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import jwt
import pytest

from fixtures.secretscan import SecretScanner

TESTS = Path(__file__).parent


def test_a_planted_secret_is_found_in_every_spelling(tmp_path: Path) -> None:
    scanner = SecretScanner()
    secret = f"planted-{secrets.token_hex(8)}"
    scanner.register("the planted password", secret, user="mallory")
    home = tmp_path / "forklift-home"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "serve.log").write_text(f"login with {secret}\n")
    (home / "server.json").write_text(json.dumps({"password": secret + '"'}))  # JSON-escaped neighbour
    (home / "forklift.db").write_bytes(b"SQLite format 3\x00" + secret.encode() + b"\x00" * 100)
    basic = base64.b64encode(f"mallory:{secret}".encode())
    (home / "logs" / "access.log").write_bytes(b"Authorization: Basic " + basic + b"\n")
    (home / "clean.log").write_text("nothing here\n")
    hits = scanner.scan_tree(tmp_path)
    assert sorted(Path(h.where).name for h in hits) == ["access.log", "forklift.db", "serve.log", "server.json"]
    assert {h.secret for h in hits} == {"the planted password"}
    assert all(secret not in str(h) for h in hits)


def test_a_registered_input_is_skipped_and_fifos_are_not_opened(tmp_path: Path) -> None:
    scanner = SecretScanner()
    scanner.register("a docker password", "hunter2-hunter2")
    config = tmp_path / "config.json"
    config.write_text('{"auths": {"r": {"password": "hunter2-hunter2"}}}')
    copy = tmp_path / "copy-of-config.json"
    copy.write_bytes(config.read_bytes())
    os.mkfifo(tmp_path / "channel-fifo")  # a Pipe-mode channel: opening it would block the scan
    (tmp_path / "link").symlink_to(copy)
    scanner.register_input(config)
    assert [Path(h.where).name for h in scanner.scan_tree(tmp_path)] == ["copy-of-config.json"]


def test_an_issued_token_is_found_by_its_signature(tmp_path: Path) -> None:
    scanner = SecretScanner()
    token = jwt.encode({"sub": "alice", "jti": secrets.token_hex(8)}, secrets.token_hex(32), algorithm="HS256")
    other = jwt.encode({"sub": "bob"}, secrets.token_hex(32), algorithm="HS256")
    scanner.register_token(token)
    (tmp_path / "leak.log").write_text(f"GET /v2/ Authorization: Bearer {token}\n")
    (tmp_path / "other.log").write_text(f"Bearer {other}\n")
    assert [(Path(h.where).name, h.secret) for h in scanner.scan_tree(tmp_path)] == [
        ("leak.log", "a token the token server issued")]


def test_captured_output_is_scanned() -> None:
    scanner = SecretScanner()
    scanner.register("an access key secret", "wJalrXUtnFEMI/K7MDENG")
    hits = scanner.scan_sections("tests/x.py::test_y", [("Captured stderr call", "key=wJalrXUtnFEMI/K7MDENG")])
    assert [str(h) for h in hits] == ["Captured stderr call of tests/x.py::test_y: an access key secret"]


def test_a_leak_fails_the_session_and_names_the_file_and_the_test(pytester: pytest.Pytester) -> None:
    secret = f"inner-{secrets.token_hex(8)}"  # the outer session never knows it
    pytester.makepyfile(test_leaky=f"""
        from fixtures import secretscan

        secretscan.register("the inner password", {secret!r})

        def test_clean():
            pass

        def test_leaks(tmp_path):
            (tmp_path / "serve.log").write_text("password " + {secret!r})
            print({secret!r})
    """)
    # The inner session reads no pyproject.toml: kmock's plugin (it needs pytest-asyncio) is turned off here.
    result = pytester.runpytest_subprocess(
        "-p", "fixtures.secretscan", "-p", "no:cacheprovider", "-p", "no:kmock",
        "-o", f"pythonpath={TESTS}",
    )
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    result.stdout.fnmatch_lines(["*test secrets found in the suite's output*", "*serve.log: the inner password"])
    result.stdout.fnmatch_lines(["Captured stdout call of test_leaky.py::test_leaks: the inner password"])
    assert "2 passed" in output
    assert secret not in output


def test_no_secret_no_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_quiet="""
        from fixtures import secretscan

        secretscan.register("a password", "never-written-anywhere")

        def test_quiet(tmp_path):
            (tmp_path / "a.log").write_text("fine")
    """)
    result = pytester.runpytest_subprocess("-p", "fixtures.secretscan", "-p", "no:cacheprovider", "-p", "no:kmock",
                                           "-o", f"pythonpath={TESTS}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "test secrets found" not in result.stdout.str()
