"""Benchmark InvokeEndpoint through `forklift serve` against calling the container directly.

    .venv/bin/python bench/invoke.py [--seconds 5] [--connections 8] [--runs 3]

Sets up everything in a temporary FORKLIFT_HOME: a TLS registry, the tests' small Python model
server image (pushed there), a `forklift serve` subprocess and a one-instance endpoint. Then `wrk`
sends the same small JSON POST, with the headers botocore sends (a SigV4 `Authorization` computed
once: forklift reads its scope but does not verify signatures), (a) straight to the container's
`http://<addr>:8080/invocations` and (b) to `POST /endpoints/<name>/invocations` on the server.
Runs alternate between (a) and (b). Everything shares the machine's cores, so run it on an idle
machine: a test suite running beside it halves both figures unevenly.

    latency:    1 connection, p50/p99 of each, and the p50 overhead forklift adds (target <= 1 ms)
    throughput: --connections connections, requests/s of each and the ratio (target >= 0.8)

Needs root, runc and wrk (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BODY = '[[1.0, 2.0]]'
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def load_fixtures():
    """The inference tests' helpers (model server source, image build, server process)."""
    sys.path[:0] = [str(ROOT / "tests" / "inference"), str(ROOT / "tests")]
    import inference_support

    return inference_support


def build_image(fx, work: Path, registry: str, pki) -> str:
    from forklift.config import Settings
    from forklift.demo.rootfs import build_python_rootfs
    from forklift.images.build import BuildOptions, build
    from forklift.images.imagestore import ImageStore
    from forklift.images.push import push_sync, source_from_store

    pyslim = build_python_rootfs(work / "python-rootfs")
    code = work / "code"
    (code / "opt" / "program").mkdir(parents=True)
    (code / "opt" / "program" / "serve.py").write_text(fx.SERVE_PY)
    from forklift.devregistry import install_ca

    install_ca(pki, work / "build-home" / "certs.d", registry)
    store = ImageStore(Settings(home=work / "build-home"))
    ref = f"{registry}/bench/model-server:1"
    image = build(store, [pyslim, code], tag=ref, options=BuildOptions(entrypoint=["python3", "/opt/program/serve.py"]))
    push_sync(source_from_store(store, image.reference), ref, store)
    return ref


def botocore_headers(server, endpoint: str) -> dict[str, str]:
    """The headers boto3's sagemaker-runtime client sends with InvokeEndpoint (signed once)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest("POST", f"{server.url}/endpoints/{endpoint}/invocations", data=BODY,
                         headers={"Content-Type": "application/json", "Accept": "application/json",
                                  "User-Agent": "Boto3/1.40 md/Botocore#1.40 ua/2.1 os/linux",
                                  "amz-sdk-invocation-id": "2f4e0d6c-5a83-4a7c-9e0e-1d3f7b4c2a10",
                                  "amz-sdk-request": "attempt=1; max=5"})
    SigV4Auth(Credentials("AKIAFORKLIFTBENCH", "secret"), "sagemaker", "us-east-1").add_auth(request)
    return {name: value for name, value in request.headers.items() if name.lower() != "host"}


def wrk(url: str, seconds: float, connections: int, script: Path, errors_expected: bool = False) -> dict:
    threads = min(connections, 2)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{round(seconds) or 1}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    if ("Non-2xx" in out and not errors_expected) or "Socket errors" in out:
        raise RuntimeError(f"errors while benchmarking {url}:\n{out}")
    latency = {p: float(v) * UNITS[u]
               for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"p50": latency["50"], "p99": latency["99"], "rps": rps}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install -y wrk")

    from forklift.config import Settings
    from forklift.control.inference.store import InferenceStore
    from forklift.devregistry import LocalRegistry, create_pki, install_ca

    fx = load_fixtures()
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-invoke-"))
    home = work / "home"
    home.mkdir()
    pki = create_pki(work / "pki")
    server = None
    try:
        with LocalRegistry(work / "registry", pki) as registry:
            install_ca(pki, home / "certs.d", registry.address)
            image = build_image(fx, work, registry.address, pki)
            server = fx.ServeProcess(home).start()
            sm = server.client("sagemaker")
            model = fx.create_model(sm, server, image, provider=None)
            name = "bench-endpoint"
            sm.create_endpoint(EndpointName=name,
                               EndpointConfigName=fx.create_config(sm, [("AllTraffic", model, 1, 1.0)]))
            status = fx.wait_status(sm, name, timeout=120)
            if status["EndpointStatus"] != "InService":
                sys.exit(f"the endpoint did not come up: {status.get('FailureReason')}")
            check = fx.predict(server.client("sagemaker-runtime"), name, [[1.0, 2.0]])
            assert check["predictions"] == [9.0], check
            (instance,) = InferenceStore(Settings(home=home).database_url).instances(name)
            direct_url = f"http://{instance.address}:8080/invocations"
            forklift_url = f"{server.url}/endpoints/{name}/invocations"
            script = work / "post.lua"
            script.write_text(f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\n'
                              + "".join(f'wrk.headers["{header}"] = "{value}"\n'
                                        for header, value in botocore_headers(server, name).items()))
            (work / "get.lua").write_text('wrk.method = "GET"\n')
            for url in (direct_url, forklift_url):  # warm up connections and code paths
                wrk(url, 1, args.connections, script)
            results: dict[str, dict[str, list]] = {"direct": {"lat": [], "tput": []},
                                                   "forklift": {"lat": [], "tput": []}}
            for _ in range(args.runs):
                for label, url in (("direct", direct_url), ("forklift", forklift_url)):
                    results[label]["lat"].append(wrk(url, args.seconds, 1, script))
                    results[label]["tput"].append(wrk(url, args.seconds, args.connections, script))
            ping = wrk(f"{server.url}/ping", args.seconds, args.connections, work / "get.lua")
            # the whole InvokeEndpoint path up to the routing table, without the hop to the container
            unknown = wrk(f"{server.url}/endpoints/no-such-endpoint/invocations", args.seconds, args.connections,
                          script, errors_expected=True)
            sm.delete_endpoint(EndpointName=name)
            time.sleep(0.5)
    finally:
        if server is not None:
            server.stop()
            fx.remove_containers(home)
        shutil.rmtree(work, ignore_errors=True)

    d, f = results["direct"], results["forklift"]
    print(f"payload {BODY!r}, {args.runs} runs of {args.seconds:g} s each (medians)")
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'req/s @' + str(args.connections):>12}")
    for label, r in (("direct", d), ("forklift", f)):
        print(f"{label:10} {median(r['lat'], 'p50'):8.3f} {median(r['lat'], 'p99'):8.3f} "
              f"{median(r['tput'], 'rps'):12.0f}")
    overhead = median(f["lat"], "p50") - median(d["lat"], "p50")
    ratio = median(f["tput"], "rps") / median(d["tput"], "rps")
    print(f"ceilings of the one server process: its no-op GET /ping {ping['rps']:.0f} req/s; InvokeEndpoint of an "
          f"unknown endpoint (parse, validate, route, 400) {unknown['rps']:.0f} req/s")
    print(f"p50 overhead: {overhead:.3f} ms (target <= 1 ms)   throughput ratio: {ratio:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
