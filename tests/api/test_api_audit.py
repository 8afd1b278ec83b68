"""The audit log and ownership, against a real `forklift serve` and real boto3 clients signed with
access keys made by the real CLI: one record per mutating call, with its outcome, and none for reads."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from test_api_keys import created_key, eventually, forklift, sagemaker, unsigned_list

from fixtures.postgres import database_of
from forklift.dburl import engine_url

IMAGE = "registry.example.com/algo:1"
PRIVATE = {"TrainingImage": IMAGE, "TrainingInputMode": "File",
           "TrainingImageConfig": {"TrainingRepositoryAccessMode": "Vpc"}}
VPC = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}


def training_job(name: str, **overrides) -> dict:
    request = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "AlgorithmSpecification": PRIVATE,
        "VpcConfig": VPC,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    request.update(overrides)
    return request


def records(home: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((home / "audit").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def api_records(home: Path) -> list[dict]:
    return [r for r in records(home) if r["event"] == "api"]


def created_by(home: Path, table: str, name: str) -> str | None:
    engine = create_engine(engine_url(database_of(home).url_for(home)), poolclass=NullPool)
    try:
        with engine.connect() as db:
            row = db.execute(text(f'SELECT created_by FROM "{table}" WHERE name = :name'), {"name": name}).first()
    finally:
        engine.dispose()
    assert row is not None, f"no {name} in {table}"
    return row[0]


def test_an_unsigned_create_is_owned_by_anonymous_and_recorded(launch):
    server = launch()
    sm = server.client("sagemaker")  # signed with a key the server does not hold: no key exists, so unchecked
    response = sm.create_training_job(**training_job("anon-job"))
    assert created_by(server.home, "training_jobs", "anon-job") == "anonymous"
    [record] = [r for r in api_records(server.home) if r["operation"] == "CreateTrainingJob"]
    assert record["principal"] == "anonymous" and record["outcome"] == "ok"
    assert record["resource"] == response["TrainingJobArn"]
    assert record["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert record["source"] == "127.0.0.1"
    assert record["time"].endswith("Z") and record["time"][:10] in {p.stem for p in (server.home / "audit").iterdir()}


def test_a_keyed_server_records_every_mutating_call_with_its_outcome_and_no_read(launch):
    server = launch()
    key, secret = created_key(server.home, "--name", "ci")
    eventually(lambda: unsigned_list(server).status_code == 400)
    sm = sagemaker(server, key, secret)

    created = sm.create_training_job(**training_job("signed-job"))
    with pytest.raises(ClientError) as invalid:
        sm.create_training_job(**training_job("bad-job", AlgorithmSpecification={
            **PRIVATE, "TrainingInputMode": "Bogus"}))
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as forged:
        sagemaker(server, key, secret + "x").stop_training_job(TrainingJobName="signed-job")
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
    sm.describe_training_job(TrainingJobName="signed-job")
    sm.list_training_jobs()
    sm.list_endpoints()

    owner = created_by(server.home, "training_jobs", "signed-job")
    assert owner is not None and owner.startswith("arn:aws:iam::") and owner.endswith(":user/ci")
    recorded = api_records(server.home)
    assert [(r["operation"], r["outcome"]) for r in recorded] == [
        ("CreateTrainingJob", "ok"), ("CreateTrainingJob", "ValidationException"),
        ("StopTrainingJob", "InvalidSignatureException")]
    ok, bad, refused = recorded
    assert ok["principal"] == bad["principal"] == owner and ok["access_key_id"] == key
    assert ok["resource"] == created["TrainingJobArn"] and bad["resource"].endswith(":training-job/bad-job")
    assert refused["principal"] == "anonymous" and refused["access_key_id"] == key  # the claimed id
    assert refused["request_id"] == forged.value.response["ResponseMetadata"]["RequestId"]
    text = "".join(p.read_text() for p in (server.home / "audit").glob("*.jsonl"))
    assert secret not in text and "Signature=" not in text and "RoleArn" not in text

    directory = server.home / "audit"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()} == {0o600}

    # what `forklift audit` shows of it, read from the files on this machine
    shown = forklift(server.home, "audit", "--since", "1h", "--principal", "ci", "--json")
    assert shown.returncode == 0, shown.stderr
    mine = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [(r["operation"], r["outcome"]) for r in mine if r["event"] == "api"] == [
        ("CreateTrainingJob", "ok"), ("CreateTrainingJob", "ValidationException")]
    by_key_id = forklift(server.home, "audit", "--principal", key, "--json")
    assert len(by_key_id.stdout.splitlines()) == 3  # the refused call claimed the key's id too
