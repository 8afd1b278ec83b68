"""Load `forklift serve` with many signed clients at once, and watch what it answers and what it holds.

    .venv/bin/python bench/load.py [--seconds 60] [--connections 10,50,200,1000] [--max-requests 2000000]

Sets up everything in a temporary FORKLIFT_HOME, on loopback only: a TLS registry, the tests' small
Python model server image and a busybox training image (pushed there), 10,000 finished training jobs
in the store, an access key created for the run (so every request is signed and verified), a
`forklift serve` subprocess and a one-instance endpoint. Then, for each N of --connections, N
keep-alive connections (spread over source addresses 127.0.0.2, 127.0.0.3, … so that no one address
passes `max_connections_per_client`) send, back to back for --seconds:

    InvokeEndpoint (60%), DescribeTrainingJob (25%), ListTrainingJobs (15%),
    and CreateTrainingJob at --create-rate per second (jobs that run /bin/true; stopped after each N)

The client is one asyncio process writing HTTP/1.1 itself and signing with a cached SigV4 key, so
it costs far less per request than the server. It is bounded: --max-requests in all, a --timeout per
request (a request that passes it is an error, `timeout`), at most 5 attempts per call. A
`ThrottlingException` is retried as a default boto3 client does (botocore's legacy mode: 4 retries,
jittered backoff doubling from 1 s) and counted as `throttled`; it is an error only when the last
attempt is throttled too.

Printed per N: requests answered, errors by kind, p50/p99/max per call (as the caller sees it,
retries included), the server's RSS at the start and end of the row. Targets: zero errors at every
N, p99 <= 10x p50 at 200, RSS flat. Needs root and runc. Client and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]
REGION = "us-east-1"
MIX = (("InvokeEndpoint", 60), ("DescribeTrainingJob", 25), ("ListTrainingJobs", 15))
PER_SOURCE = 200  # connections per source address, below the default max_connections_per_client (256)
MAX_ATTEMPTS = 5  # botocore's default ("legacy") retry mode: 4 retries, jittered backoff doubling from 1 s
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
VPC = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}


class Signer:
    """SigV4 for the few requests this bench sends, with the signing key derived once per day."""

    def __init__(self, key_id: str, secret: str, host: str):
        self.key_id, self.secret, self.host = key_id, secret, host
        self._keys: dict[str, bytes] = {}

    def _key(self, day: str) -> bytes:
        if day not in self._keys:
            key = ("AWS4" + self.secret).encode()
            for part in (day, REGION, "sagemaker", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys[day] = key
        return self._keys[day]

    def request(self, path: str, headers: dict[str, str], body: bytes) -> bytes:
        """The whole request, signed over host, x-amz-date and `headers` (names lower-case)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        signed = {"host": self.host, "x-amz-date": stamp, **headers}
        names = sorted(signed)
        canonical = "\n".join(["POST", path, "", *(f"{n}:{signed[n]}" for n in names), "", ";".join(names),
                               hashlib.sha256(body).hexdigest()])
        scope = f"{stamp[:8]}/{REGION}/sagemaker/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key(stamp[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        auth = (f"AWS4-HMAC-SHA256 Credential={self.key_id}/{scope}, SignedHeaders={';'.join(names)}, "
                f"Signature={signature}")
        head = "".join(f"{n}: {signed[n]}\r\n" for n in names)
        return (f"POST {path} HTTP/1.1\r\n{head}authorization: {auth}\r\ncontent-length: {len(body)}\r\n\r\n"
                .encode() + body)


def sagemaker_call(signer: Signer, operation: str, params: dict) -> bytes:
    return signer.request("/", {"content-type": "application/x-amz-json-1.1",
                                "x-amz-target": f"SageMaker.{operation}"}, json.dumps(params).encode())


def create_job_params(image: str) -> dict:
    return {"TrainingJobName": f"load-{uuid.uuid4().hex[:12]}", "RoleArn": ROLE, "VpcConfig": VPC,
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File",
                                       "ContainerEntrypoint": ["/bin/true"],
                                       "TrainingImageConfig": {"TrainingRepositoryAccessMode": "Vpc"}},
            "OutputDataConfig": {"S3OutputPath": "s3://bench-out/models"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600}}


@dataclass
class Row:
    """What one N's run saw."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter = field(default_factory=collections.Counter)
    throttled: int = 0
    creates: int = 0  # CreateTrainingJob calls begun
    created: list[str] = field(default_factory=list)  # the jobs they made


class Load:
    def __init__(self, host: str, port: int, signer: Signer, endpoint: str, jobs: list[str], image: str,
                 args: argparse.Namespace):
        self.host, self.port, self.signer = host, port, signer
        self.endpoint, self.jobs, self.image, self.args = endpoint, jobs, image, args
        self.sent = 0
        mix = [m for m in MIX if m[0] in args.calls.split(",")]
        self.calls, self.weights = [m[0] for m in mix], [m[1] for m in mix]

    def plan(self, row: Row, rng: random.Random, started: float) -> tuple[str, bytes, str]:
        """(operation, request bytes, the name of the job it creates or "")."""
        if row.creates < (time.monotonic() - started) * self.args.create_rate:
            row.creates += 1
            params = create_job_params(self.image)
            name = params["TrainingJobName"]
            return "CreateTrainingJob", sagemaker_call(self.signer, "CreateTrainingJob", params), name
        operation = rng.choices(self.calls, self.weights)[0]
        if operation == "InvokeEndpoint":
            data = self.signer.request(f"/endpoints/{self.endpoint}/invocations",
                                       {"content-type": "application/json", "accept": "application/json"},
                                       b"[[1.0, 2.0]]")
        elif operation == "DescribeTrainingJob":
            data = sagemaker_call(self.signer, operation, {"TrainingJobName": rng.choice(self.jobs)})
        else:
            data = sagemaker_call(self.signer, operation, {"MaxResults": 100, "SortOrder": "Descending"})
        return operation, data, ""

    async def exchange(self, conn: list, source: str, data: bytes) -> tuple[int, bytes, bool]:
        reused = conn[0] is not None
        if not reused:
            conn[:] = await asyncio.open_connection(self.host, self.port, local_addr=(source, 0))
        reader, writer = conn
        writer.write(data)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            # A kept-alive connection the server closed while it sat idle (keep_alive_timeout_seconds):
            # sent again on a new one, as urllib3 does.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            writer.close()
            conn[:] = [None, None]
            return await self.exchange(conn, source, data)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(fields.get("content-length", "0")))
        return status, body, fields.get("connection", "").lower() == "close"

    async def client(self, index: int, row: Row, started: float, deadline: float) -> None:
        rng = random.Random(index)
        source = f"127.0.0.{2 + index // PER_SOURCE}"
        conn: list = [None, None]

        def drop() -> None:
            if conn[1] is not None:
                conn[1].close()
            conn[:] = [None, None]

        while time.monotonic() < deadline and self.sent < self.args.max_requests:
            operation, data, job = self.plan(row, rng, started)
            began = time.perf_counter()
            for attempt in range(1, MAX_ATTEMPTS + 1):
                self.sent += 1
                try:
                    async with asyncio.timeout(self.args.timeout):
                        status, body, closing = await self.exchange(conn, source, data)
                except TimeoutError:
                    row.errors[f"{operation}: timeout"] += 1
                    drop()
                    break
                except (OSError, asyncio.IncompleteReadError) as exc:
                    row.errors[f"{operation}: {type(exc).__name__}"] += 1
                    drop()
                    break
                if closing:
                    drop()
                kind = ""
                if status >= 400:
                    try:
                        kind = json.loads(body).get("__type", "") or json.loads(body).get("ErrorCode", "")
                    except ValueError:
                        kind = ""
                if kind == "ThrottlingException" and attempt < MAX_ATTEMPTS:
                    row.throttled += 1
                    await asyncio.sleep(rng.random() * 2 ** (attempt - 1))
                    continue
                if status >= 400:
                    row.errors[f"{operation}: {status} {kind or body[:60]!r}"] += 1
                else:
                    row.latencies[operation].append(time.perf_counter() - began)
                    if job:
                        row.created.append(job)
                break
        drop()

    async def run(self, connections: int, seconds: float) -> Row:
        row = Row()
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(self.client(i, row, started, deadline) for i in range(connections)))
        return row


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def report(n: int, row: Row, seconds: float, rss: tuple[float, float], cpu: tuple[float, float]) -> None:
    total = sum(len(v) for v in row.latencies.values())
    errors = sum(row.errors.values())
    print(f"N={n}: {total} answered ({total / seconds:.0f}/s), {errors} errors, {row.throttled} throttled "
          f"(retried), server RSS {rss[0]:.0f} -> {rss[1]:.0f} MiB; CPU seconds: server {cpu[0]:.1f}, "
          f"this client {cpu[1]:.1f}")
    for kind, count in sorted(row.errors.items()):
        print(f"    error {kind}: {count}")
    print(f"    {'call':22} {'count':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for operation in ("InvokeEndpoint", "DescribeTrainingJob", "ListTrainingJobs", "CreateTrainingJob"):
        values = row.latencies.get(operation, [])
        print(f"    {operation:22} {len(values):8} {percentile(values, .5) * 1e3:9.1f} "
              f"{percentile(values, .99) * 1e3:9.1f} {max(values, default=0) * 1e3:9.1f}")


def create_key(home: Path, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "forklift", "keys", "create", "--name", "load-bench"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.split())


def stop_jobs(sm, names: list[str]) -> None:
    """Stop the jobs a row created that still run, and wait until none does."""
    deadline = time.monotonic() + 120
    for name in names:
        if sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress":
            sm.stop_training_job(TrainingJobName=name)
    for name in names:
        while (sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in ("InProgress", "Stopping")
               and time.monotonic() < deadline):
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="per N")
    parser.add_argument("--connections", default="10,50,200,1000", help="the N of each row, comma-separated")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="attempts in all, every row together")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one attempt may take")
    parser.add_argument("--create-rate", type=float, default=1.0, help="CreateTrainingJob calls per second")
    parser.add_argument("--calls", default=",".join(m[0] for m in MIX),
                        help="which of the read calls to mix (their weights kept), e.g. DescribeTrainingJob alone")
    parser.add_argument("--jobs", type=int, default=10_000, help="finished jobs seeded into the store")
    args = parser.parse_args()
    counts = [int(n) for n in args.connections.split(",")]
    if max(counts) > 250 * PER_SOURCE:
        sys.exit(f"at most {250 * PER_SOURCE} connections")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * max(counts) + 1024  # client and server ends of every connection; the server inherits it
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    import boto3
    import invoke as invoke_bench  # bench/invoke.py: the model server image
    from botocore.config import Config

    import api as api_bench  # bench/api.py: the seeded jobs and the busybox image
    from forklift.devregistry import LocalRegistry, create_pki, install_ca

    fx = invoke_bench.load_fixtures()
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-load-"))
    home = work / "home"
    home.mkdir()
    pki = create_pki(work / "pki")
    server = None
    try:
        with LocalRegistry(work / "registry", pki) as registry:
            install_ca(pki, home / "certs.d", registry.address)
            (home / "buckets" / "bench-out").mkdir(parents=True)
            model_image = invoke_bench.build_image(fx, work, registry.address, pki)
            train_image = api_bench.push_image(home, registry.address)
            jobs = api_bench.seed(home, args.jobs)
            server = fx.ServeProcess(home)
            key = create_key(home, server.env())
            server.start()
            credentials = {"aws_access_key_id": key["AWS_ACCESS_KEY_ID"],
                           "aws_secret_access_key": key["AWS_SECRET_ACCESS_KEY"]}
            sm = boto3.client("sagemaker", endpoint_url=server.url, region_name=REGION,
                              config=Config(retries={"max_attempts": 5, "mode": "standard"}), **credentials)
            model = fx.create_model(sm, server, model_image, provider=None)
            endpoint = "load-endpoint"
            sm.create_endpoint(EndpointName=endpoint,
                               EndpointConfigName=fx.create_config(sm, [("AllTraffic", model, 1, 1.0)]))
            status = fx.wait_status(sm, endpoint, timeout=120)
            if status["EndpointStatus"] != "InService":
                sys.exit(f"the endpoint did not come up: {status.get('FailureReason')}")
            host, port = server.url.removeprefix("http://").rsplit(":", 1)
            signer = Signer(key["AWS_ACCESS_KEY_ID"], key["AWS_SECRET_ACCESS_KEY"], f"{host}:{port}")
            load = Load(host, int(port), signer, endpoint, jobs, train_image, args)
            try:
                import uvloop

                runner = uvloop.run
            except ImportError:
                runner = asyncio.run
            warm = runner(load.run(10, 2))  # warm up code paths and the first pull of the training image
            stop_jobs(sm, warm.created)
            print(f"{args.seconds:g} s per row, {args.jobs} jobs in the store, one endpoint instance, "
                  f"CreateTrainingJob {args.create_rate:g}/s, signed with a key made for the run")
            for n in counts:
                pid = server.process.pid
                before, server_cpu, own_cpu = rss_mib(pid), cpu_seconds(pid), time.process_time()
                row = runner(load.run(n, args.seconds))
                report(n, row, args.seconds, (before, rss_mib(pid)),
                       (cpu_seconds(pid) - server_cpu, time.process_time() - own_cpu))
                stop_jobs(sm, row.created)
                sys.stdout.flush()
            sm.delete_endpoint(EndpointName=endpoint)
            time.sleep(0.5)
    finally:
        if server is not None:
            server.stop()
            fx.remove_containers(home)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
