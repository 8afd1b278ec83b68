"""`forklift endpoints` and `forklift models` against the running server."""

from __future__ import annotations

import json

from inference_support import deploy


def test_endpoint_and_model_commands(server, sagemaker, inference_image, tmp_path):
    name = deploy(sagemaker, server, inference_image)
    model = sagemaker.describe_endpoint_config(EndpointConfigName=sagemaker.describe_endpoint(
        EndpointName=name)["EndpointConfigName"])["ProductionVariants"][0]["ModelName"]

    listed = server.forklift("endpoints", "list")
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and "InService" in listed.stdout

    shown = server.forklift("endpoints", "show", name)
    assert shown.returncode == 0, shown.stderr
    assert "AllTraffic" in shown.stdout and "@sha256:" in shown.stdout

    payload = tmp_path / "rows.json"
    payload.write_text("[[1, 1], [0, 0]]")
    invoked = server.forklift("endpoints", "invoke", name, "--body", f"@{payload}", "--content-type",
                              "application/json")
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout)["predictions"] == [6.0, 1.0]
    assert "variant AllTraffic" in invoked.stderr

    failed = server.forklift("endpoints", "invoke", name, "--body", "fail")
    assert failed.returncode != 0 and "ModelError" in failed.stderr and "500" in failed.stderr

    logs = server.forklift("endpoints", "logs", name)
    assert logs.returncode == 0, logs.stderr
    assert "Endpoint is InService" in logs.stdout and "model server starting" in logs.stdout

    assert model in server.forklift("models", "list").stdout
    assert json.loads(server.forklift("models", "show", model, "-o", "json").stdout)["ModelName"] == model
    table = server.forklift("models", "show", model)
    assert table.returncode == 0 and inference_image in table.stdout and "Model data" in table.stdout

    described = json.loads(server.forklift("endpoints", "show", name, "-o", "json").stdout)
    assert described["EndpointStatus"] == "InService" and "ResponseMetadata" not in described
    assert described["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    listed_json = json.loads(server.forklift("endpoints", "ls", "-o", "json").stdout)["Endpoints"]
    assert name in [e["EndpointName"] for e in listed_json]

    missing = server.forklift("endpoints", "show", "no-such-endpoint")
    assert missing.returncode != 0 and "Could not find endpoint" in missing.stderr

    deleted = server.forklift("endpoints", "delete", name, "--wait")
    assert deleted.returncode == 0, deleted.stderr
    assert name not in server.forklift("endpoints", "list").stdout
    assert server.forklift("models", "delete", model).returncode == 0
