"""The PostgreSQL test fixture where Debian's binaries are missing: a test needing it is skipped saying
what to install, except under CI (scripts/setup.sh installs them there), where it fails."""

from __future__ import annotations

import pytest

from fixtures import postgres as fixture


@pytest.fixture
def no_postgresql(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> pytest.Pytester:
    monkeypatch.setattr(fixture, "binaries", lambda: None)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the inner run: this plugin alone
    pytester.makepyfile("def test_needs_a_database(postgres_url):\n    assert postgres_url\n")
    return pytester


def test_a_test_needing_postgresql_is_skipped_saying_what_to_install(no_postgresql, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = no_postgresql.runpytest_inprocess("-p", "fixtures.postgres", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*PostgreSQL not installed (apt-get install postgresql)*"])


def test_under_ci_a_missing_postgresql_fails_the_test(no_postgresql, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = no_postgresql.runpytest_inprocess("-p", "fixtures.postgres")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PostgreSQL not installed (apt-get install postgresql): scripts/setup.sh installs*"])
