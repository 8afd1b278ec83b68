"""Who created a model, an endpoint configuration and an endpoint, signed with an access key made by
the real CLI on a real `forklift serve`, and the endpoint's image pull audited under its owner."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing

import boto3
from inference_support import create_config, create_model, unique, wait_status

from fixtures.serve import NO_RETRY, REGION


def owner(home, table: str, name: str) -> str | None:
    with closing(sqlite3.connect(home / "forklift.db")) as db:
        return db.execute(f'SELECT created_by FROM "{table}" WHERE name = ?', (name,)).fetchone()[0]  # noqa: S608


def until(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the server did not take the key change into account"
        time.sleep(0.2)


def answers_unsigned(server) -> bool:
    try:
        server.client("sagemaker").list_endpoints()
        return True
    except Exception:  # noqa: BLE001 - refused while the key exists
        return False


def test_signed_creates_record_the_keys_principal_and_the_pull_is_audited_under_it(own_server, inference_image):
    created = own_server.forklift("keys", "create", "--name", "deployer")
    assert created.returncode == 0, created.stderr
    values = dict(line.split("=", 1) for line in created.stdout.splitlines())
    until(lambda: not answers_unsigned(own_server))
    sm = boto3.client("sagemaker", endpoint_url=own_server.url, region_name=REGION, config=NO_RETRY,
                      aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"])
    try:
        model = create_model(sm, own_server, inference_image)
        config = create_config(sm, [("AllTraffic", model, 1, 1.0)])
        endpoint = unique("endpoint")
        arn = sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)["EndpointArn"]
        assert wait_status(sm, endpoint)["EndpointStatus"] == "InService"
        home = own_server.home
        principal = owner(home, "inference_endpoints", endpoint)
        assert principal is not None and principal.startswith("arn:aws:iam::") and principal.endswith(":user/deployer")
        assert owner(home, "inference_models", model) == owner(home, "inference_endpoint_configs", config) == principal

        records = [json.loads(line) for path in sorted((home / "audit").glob("*.jsonl"))
                   for line in path.read_text().splitlines()]
        [pull] = [r for r in records if r["event"] == "pull" and r["resource"] == arn]
        assert pull["principal"] == principal and pull["outcome"] == "ok"
        assert pull["repository"] == "docker-local/my-inference-image" and pull["digest"].startswith("sha256:")
        calls = [(r["operation"], r["outcome"]) for r in records if r["event"] == "api"]
        assert calls == [("CreateModel", "ok"), ("CreateEndpointConfig", "ok"), ("CreateEndpoint", "ok")]
        shown = own_server.forklift("endpoints", "show", endpoint, env={**own_server.env(), **values})
        assert shown.returncode == 0, shown.stderr
        assert any(line.split() == ["Created", "by", principal] for line in shown.stdout.splitlines()), shown.stdout
        sm.delete_endpoint(EndpointName=endpoint)
    finally:  # the fixture cleans up unsigned: give the server its embedded default back
        assert own_server.forklift("keys", "delete", "deployer").returncode == 0
        until(lambda: answers_unsigned(own_server))
