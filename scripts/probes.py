"""Reruns the HTTP-edge probes of the security review against a real `forklift serve`, printing each answer.

    .venv/bin/python scripts/probes.py [--quick]

Each probe is what an attacker who reaches the port can send: unsigned and forged requests, nesting,
header floods, a lying Content-Length, a drip-fed body, a socket flood from one address, a backtracking
log-filter pattern, members that botocore's model calls integers. The server runs in a temporary home
and is stopped at the end; nothing here is a test (the suite holds the answers); this prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"


def start(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FORKLIFT_"))}
    env["FORKLIFT_HOME"] = str(home)
    process = subprocess.Popen([sys.executable, "-m", "forklift", "serve", "--port", "0", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(400):
        if process.poll() is not None:
            raise SystemExit(f"forklift serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            return process, json.loads((home / "server.json").read_text())["url"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    process.kill()
    raise SystemExit("forklift serve did not start")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def post(url: str, target: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    all_headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1", **(headers or {})}
    return httpx.post(url + "/", content=body, headers=all_headers, timeout=60)


def answer(response: httpx.Response) -> str:
    try:
        kind = response.json().get("__type", "")
    except ValueError:
        kind = response.text[:60]
    return f"{response.status_code} {kind}".strip()


def address(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def until_closed(sock: socket.socket, feed: Callable[[int], bytes | None], limit: float) -> tuple[float, bytes]:
    """Feeds the socket (feed(i) -> bytes to send, or None to only wait) until the server closes it."""
    started = time.monotonic()
    sock.settimeout(0.5)
    received = b""
    i = 0
    while time.monotonic() - started < limit:
        chunk = feed(i)
        i += 1
        try:
            if chunk:
                sock.sendall(chunk)
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - started, received
            received += data
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started, received
    return float("inf"), received


def probe_bodies(url: str) -> None:
    deep = b'{"TrainingJobName":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    print(f"  JSON nested 10,000 deep: {answer(post(url, 'SageMaker.CreateTrainingJob', deep))}")
    for member, value in (("InstanceCount", 0), ("MaxRuntimeInSeconds", 1.5)):
        job = {"TrainingJobName": "probe", "RoleArn": "arn:aws:iam::000000000000:role/x",
               "AlgorithmSpecification": {"TrainingImage": "registry.invalid/x:1", "TrainingInputMode": "File"},
               "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
               "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
               "StoppingCondition": {"MaxRuntimeInSeconds": 60}}
        section = "ResourceConfig" if member == "InstanceCount" else "StoppingCondition"
        job[section][member] = value  # type: ignore[index]
        response = post(url, "SageMaker.CreateTrainingJob", json.dumps(job).encode())
        message = response.json().get("message", "") if response.status_code >= 400 else ""
        print(f"  {member}={value}: {answer(response)} {message[:100]}")


def probe_headers(url: str, pid: int) -> None:
    host, port = address(url)
    many = "".join(f"X-Probe-{i}: x\r\n" for i in range(10_000))
    with socket.create_connection((host, port)) as sock:
        request = f"POST / HTTP/1.1\r\nHost: {host}\r\n{many}Content-Length: 0\r\n\r\n".encode()
        _, received = until_closed(sock, lambda i: request if i == 0 else None, 30)
        status = received.split(b"\r\n", 1)[0].decode() or "closed"
        print(f"  10,000 header fields: {status}")
    before = rss_mib(pid)
    with socket.create_connection((host, port)) as sock:
        sock.settimeout(30)
        try:
            sock.sendall(f"POST / HTTP/1.1\r\nHost: {host}\r\nX-Big: ".encode())
            block = b"a" * (1 << 20)
            for _ in range(100):
                sock.sendall(block)
            status = sock.recv(4096).split(b"\r\n", 1)[0].decode() or "closed"
        except OSError as exc:
            status = f"connection closed by the server ({type(exc).__name__})"
    print(f"  one 100 MB header: {status}; server memory {before:.0f} -> {rss_mib(pid):.0f} MiB")


def probe_slow(url: str, limit: float) -> None:
    host, port = address(url)
    head = (f"POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: SageMaker.ListTrainingJobs\r\n"
            "Content-Type: application/x-amz-json-1.1\r\nContent-Length: 1000\r\n\r\n{}").encode()
    with socket.create_connection((host, port)) as sock:
        took, _ = until_closed(sock, lambda i: head if i == 0 else None, limit)
        print(f"  Content-Length 1000, 2 bytes sent: closed after {took:.1f} s (waited up to {limit:.0f} s)")
    with socket.create_connection((host, port)) as sock:
        drip = head[:-2]
        took, _ = until_closed(sock, lambda i: drip[i // 20:i // 20 + 1] if i % 20 == 0 else None, limit)
        print(f"  1 byte every 10 s: closed after {took:.1f} s (waited up to {limit:.0f} s)")
    with socket.create_connection((host, port)) as sock:
        took, _ = until_closed(sock, lambda i: None, limit)
        print(f"  a connection that sends nothing: closed after {took:.1f} s (waited up to {limit:.0f} s)")


def probe_flood(url: str, count: int) -> None:
    host, port = address(url)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                held.append(socket.create_connection((host, port), timeout=5))
            except OSError:
                break
        time.sleep(1)
        closed = 0
        for sock in held:
            sock.setblocking(False)
            try:
                sock.recv(1)  # an answer (503) or the end: the server turned this one away
                closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        other = socket.create_connection((host, port), timeout=10, source_address=("127.0.0.2", 0))
        with other:
            other.sendall(f"GET /ping HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            status = other.recv(4096).split(b"\r\n", 1)[0].decode() or "closed"
        print(f"  {len(held)} idle sockets from 127.0.0.1 ({closed} answered and closed by the server); "
              f"/ping from 127.0.0.2: {status}")
    finally:
        for sock in held:
            sock.close()


def probe_pattern(limit: float) -> None:
    """Each length in a child process: a backtracking matcher may never return."""
    code = ("import sys, time\nfrom forklift.api.logpattern import compile_pattern\n"
            "match = compile_pattern('%(a+)+b%')\nstarted = time.perf_counter()\n"
            "found = match('a' * int(sys.argv[1]))\nprint(found, f'{time.perf_counter() - started:.4f}')\n")
    for length in (22, 26, 1000):
        try:
            out = subprocess.run([sys.executable, "-c", code, str(length)], capture_output=True, text=True,
                                 timeout=limit, check=True).stdout.split()
            print(f"  %(a+)+b% on a {length}-character line: {out[0]} in {out[1]} s")
        except subprocess.TimeoutExpired:
            print(f"  %(a+)+b% on a {length}-character line: no answer within {limit:.0f} s")
            break


def sign(url: str, target: str, body: bytes, key: str, secret: str) -> dict[str, str]:
    request = AWSRequest("POST", url + "/", data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(key, secret), "sagemaker", REGION).add_auth(request)
    return dict(request.headers.items())


def probe_signatures(url: str, home: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FORKLIFT_"))},
           "FORKLIFT_HOME": str(home)}
    print(f"  unsigned, no key yet: {answer(post(url, 'SageMaker.ListTrainingJobs', b'{}'))}")
    made = subprocess.run([sys.executable, "-m", "forklift", "keys", "create", "--name", "probe"], env=env,
                          capture_output=True, text=True, check=True).stdout.split()
    key, secret = (line.split("=", 1)[1] for line in made[:2])
    time.sleep(2.5)  # the server believes "no key" for up to two seconds
    body = b"{}"
    print(f"  unsigned, a key exists: {answer(post(url, 'SageMaker.ListTrainingJobs', body))}")
    forged = sign(url, "SageMaker.ListTrainingJobs", body, key, secret)
    forged["Authorization"] = forged["Authorization"].rsplit("Signature=", 1)[0] + "Signature=" + "deadbeef" * 8
    print(f"  forged signature: {answer(post(url, 'SageMaker.ListTrainingJobs', body, forged))}")
    good = sign(url, "SageMaker.ListTrainingJobs", body, key, secret)
    print(f"  signed by the key: {answer(post(url, 'SageMaker.ListTrainingJobs', body, good))}")


def probe_bind(home: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FORKLIFT_"))},
           "FORKLIFT_HOME": str(home)}
    result = subprocess.run([sys.executable, "-m", "forklift", "serve", "--host", "0.0.0.0", "--port", "0"],
                            env=env, capture_output=True, text=True, timeout=60)
    print(f"  serve --host 0.0.0.0 with no key: exit {result.returncode}: {result.stderr.strip()[:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter waits and a smaller socket flood")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        print("bind:")
        probe_bind(home / "bind")
        process, url = start(home / "server")
        try:
            print("bodies:")
            probe_bodies(url)
            print("headers:")
            probe_headers(url, process.pid)
            print("slow clients:")
            probe_slow(url, 30 if options.quick else 90)
            print("socket flood:")
            probe_flood(url, 600 if options.quick else 5000)
            print("log filter pattern:")
            probe_pattern(20 if options.quick else 60)
            print("signatures:")
            probe_signatures(url, home / "server")
            started = time.perf_counter()
            httpx.get(url + "/ping", timeout=30)
            print(f"/ping after all of it: {1000 * (time.perf_counter() - started):.1f} ms")
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
