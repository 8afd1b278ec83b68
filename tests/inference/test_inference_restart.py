"""Endpoints survive a server restart: running containers are re-adopted from the database and
serve again at once, without being restarted."""

from __future__ import annotations

from inference_support import deploy, predict


def test_endpoint_survives_a_server_restart(own_server, inference_image):
    sm = own_server.client("sagemaker")
    name = deploy(sm, own_server, inference_image)
    before = predict(own_server.client("sagemaker-runtime"), name, [[1, 1]])

    own_server.stop()
    own_server.start()  # on another port: new clients

    sm = own_server.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService"
    after = predict(own_server.client("sagemaker-runtime"), name, [[1, 1]])
    assert after["predictions"] == [6.0]
    assert after["hostname"] == before["hostname"]  # the same container, re-adopted
    events = (own_server.home / "endpoints" / name / "events.log").read_text()
    assert "Re-adopted 1 running instance(s) after a server restart" in events
