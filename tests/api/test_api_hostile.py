"""The hostile corpus (tests/fixtures/hostile.py) sent over raw HTTP to a real `forklift serve`: each body
gets its documented AWS error (never a 500 or InternalFailure), and the server still answers afterwards."""

from __future__ import annotations

import httpx
import pytest

from fixtures.hostile import LIST_JOBS, HostileBody, api_bodies

CASES = api_bodies()
LIST_ONE = b'{"MaxResults": 1}'


def _post(server, target: str, body: bytes) -> httpx.Response:
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    return httpx.post(server.url + "/", content=body, headers=headers, timeout=60)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_body_gets_its_documented_error(server, case: HostileBody) -> None:
    response = _post(server, case.target, case.body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    error = response.json()
    code = error["__type"].rpartition("#")[2]
    assert code in case.codes, (code, error.get("message", "")[:500])
    assert error.get("message"), error
    assert len(response.content) < 64 * 1024, "an error answer does not echo an enormous body"


def test_the_server_still_answers_after_the_corpus_and_logged_no_traceback(launch, stop) -> None:
    # A server of its own, to read all it wrote: an exception the API did not map is logged with its
    # traceback before it becomes InternalFailure.
    server = launch()
    for case in CASES:
        if len(case.body) < 1 << 20:  # the enormous ones are answered before any handler: sent above
            assert _post(server, case.target, case.body).status_code < 500, case.name
    assert httpx.get(server.url + "/ping", timeout=10).status_code == 200
    response = _post(server, LIST_JOBS, LIST_ONE)
    assert response.status_code == 200, response.text
    assert "TrainingJobSummaries" in response.json()
    stderr = stop(server)
    assert "Traceback" not in stderr and "InternalFailure" not in stderr, stderr[-3000:]
