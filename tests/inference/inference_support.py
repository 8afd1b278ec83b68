"""Helpers of the inference tests (and bench/invoke.py): the model server image's source, a
`forklift serve` subprocess with boto3 clients, and shortcuts to create models, configs and
endpoints. Fixtures live in conftest.py; this module has a unique name so `from inference_support
import ...` never picks another directory's conftest when several test directories run together.

The model server answers `GET /ping` and `POST /invocations` (a linear model read from
/opt/ml/model/model.json). Its behaviour is chosen by the model's Environment:
MODE=crash (exits at start), MODE=crash-later (serves, then exits after CRASH_AFTER seconds: a
crash loop), MODE=never-ready (/ping answers 503). A body of `fail` gets a 500;
after a body of `sick`, /ping answers 503 for good.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fixtures.postgres import Database
from fixtures.serve import (  # noqa: F401  (re-exported for the tests)
    ROLE,
    VPC,
    ServeProcess,
    function_arn,
    remove_containers,
    unique,
)
from forklift.devregistry import install_ca

CONFIG_TOML = """
[inference]
startup_health_check_timeout_seconds = 8
health_check_interval_seconds = 0.5
unhealthy_after_failed_pings = 2
stop_grace_seconds = 2
"""

SERVE_PY = r'''
import json, os, signal, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
MODE = os.environ.get("MODE", "")
print("model server starting with", sys.argv[1:], "mode", MODE or "normal", flush=True)
if sys.argv[1:] != ["serve"]:
    sys.exit(2)
if MODE == "crash":
    print("loading the model failed: weights are missing", flush=True)
    sys.exit(3)
MODEL = json.load(open("/opt/ml/model/model.json"))
SICK = []
if MODE == "crash-later":
    import threading
    threading.Timer(float(os.environ.get("CRASH_AFTER", "2")), lambda: (print("out of luck", flush=True),
                                                                       os._exit(3))).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    wbufsize = 1 << 16  # ... and buffered into one (handle_one_request flushes)

    def log_message(self, *args):
        pass

    def send(self, code, body, content_type="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/ping":
            return self.send(404, b"no such path")
        if MODE == "never-ready" or SICK:
            return self.send(503, b"still loading")
        self.send(200, b"")

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/invocations":
            return self.send(404, b"no such path")
        if data == b"sick":
            SICK.append(True)
            return self.send(200, b"[]")
        if data == b"fail":
            return self.send(500, b"model exploded on this input", "text/plain")
        if data == b"slow":  # answered after a second: a client can leave while the model works
            time.sleep(1)
            return self.send(200, b"[]")
        rows = json.loads(data)
        predictions = [sum(w * x for w, x in zip(MODEL["weights"], row)) + MODEL["bias"] for row in rows]
        body = {"predictions": predictions, "version": MODEL.get("version"),
                "content_type": self.headers.get("Content-Type"), "accept": self.headers.get("Accept"),
                "hostname": os.environ.get("HOSTNAME"),
                "custom": self.headers.get("X-Amzn-SageMaker-Custom-Attributes")}
        echo = [("X-Amzn-SageMaker-Custom-Attributes", "seen=" + body["custom"])] if body["custom"] else []
        self.send(200, json.dumps(body).encode(), headers=echo)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 256
ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
'''


def prepare_home(home: Path, pki, basic_registry, database: Database | None = None) -> ServeProcess:
    install_ca(pki, home / "certs.d", basic_registry.address)
    (home / "config.toml").write_text(CONFIG_TOML)
    server = ServeProcess(home, database=database)
    server.register_function("registry-creds", basic_registry.username, basic_registry.password)
    server.register_function("wrong-creds", basic_registry.username, "not-the-password")
    return server


def model_tarball(home: Path, key: str, model: dict, mode: int = 0o644) -> str:
    """Write model.json (with `mode`) into s3://models/<key>/model.tar.gz in the embedded buckets; returns
    the URL."""
    path = home / "buckets" / "models" / key / "model.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(model).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.json")
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))
    return f"s3://models/{key}/model.tar.gz"


def create_model(sm, server: ServeProcess, image: str, *, weights=(2.0, 3.0), bias=1.0, version="v1",
                 environment: dict | None = None, provider: str | None = "registry-creds",
                 model_mode: int = 0o644) -> str:
    name = unique("model")
    image_config = {"RepositoryAccessMode": "Vpc"}
    if provider:
        image_config["RepositoryAuthConfig"] = {"RepositoryCredentialsProviderArn": function_arn(provider)}
    container = {"Image": image, "ImageConfig": image_config,
                 "ModelDataUrl": model_tarball(server.home, name, {"weights": list(weights), "bias": bias,
                                                                    "version": version}, model_mode),
                 "Environment": environment or {}}
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE, VpcConfig=VPC)
    return name


def create_config(sm, variants: list[tuple[str, str, int, float]]) -> str:
    """variants: (VariantName, ModelName, InitialInstanceCount, InitialVariantWeight)."""
    name = unique("config")
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": v, "ModelName": m, "InitialInstanceCount": n, "InstanceType": "ml.t2.medium",
         "InitialVariantWeight": w} for v, m, n, w in variants])
    return name


def wait_status(sm, name: str, until=("InService", "Failed"), timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        endpoint = sm.describe_endpoint(EndpointName=name)
        if endpoint["EndpointStatus"] in until:
            return endpoint
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoint {name} still {endpoint['EndpointStatus']}: {endpoint}")
        time.sleep(0.2)


def deploy(sm, server: ServeProcess, image: str, **model_args) -> str:
    """A one-variant endpoint, InService; returns its name."""
    model = create_model(sm, server, image, **model_args)
    name = unique("endpoint")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=create_config(sm, [("AllTraffic", model, 1, 1.0)]))
    endpoint = wait_status(sm, name)
    assert endpoint["EndpointStatus"] == "InService", endpoint
    return name


def predict(runtime_client, name: str, rows, **kwargs) -> dict:
    response = runtime_client.invoke_endpoint(EndpointName=name, Body=json.dumps(rows),
                                              ContentType="application/json", **kwargs)
    return {**json.loads(response["Body"].read()), "variant": response["InvokedProductionVariant"]}


@contextlib.contextmanager
def calling_continuously(client, endpoint: str, callers: int = 3) -> Iterator[tuple[list[dict], list[str]]]:
    """Threads invoking `endpoint` back to back while the block runs; yields (answers, errors), the
    errors as repr strings (every one is a failed request)."""
    answers: list[dict] = []
    errors: list[str] = []
    done = threading.Event()

    def keep_calling() -> None:
        while not done.is_set():
            try:
                answers.append(predict(client, endpoint, [[1, 1]]))
            except Exception as exc:  # noqa: BLE001 - every failed request is recorded for the test
                errors.append(repr(exc))

    threads = [threading.Thread(target=keep_calling) for _ in range(callers)]
    for thread in threads:
        thread.start()
    try:
        yield answers, errors
    finally:
        done.set()
        for thread in threads:
            thread.join()
