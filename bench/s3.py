"""Benchmark the S3 API of `forklift serve` on its embedded store.

    .venv/bin/python bench/s3.py [--megabytes 256] [--small 200] [--runs 3]

1. One large object through boto3's transfer manager (multipart, 8 MiB parts, 10 threads: what
   `upload_file`, `aws s3 cp` and the SDK's `upload_data` do), up and down, against copying the same
   file on the same disk with `cp` (the floor any store on this disk has), printed as ratios.
2. --small 4 KiB objects put, then got, one at a time: objects per second, against a local
   `open().write()` of each (the same floor for small files).

Everything lives in a temporary FORKLIFT_HOME; nothing is left behind.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from api import start_server  # bench/api.py: a `forklift serve` on a temporary home

CREDS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "FORKLIFT_URL", "AWS_ENDPOINT_URL_SAGEMAKER"):
        os.environ.pop(name, None)  # the server under test keeps its embedded store
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-s3-"))
    home = work / "home"
    home.mkdir()
    proc, url = start_server(home)
    try:
        s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, max_pool_connections=10), **CREDS)
        s3.create_bucket(Bucket="bench")
        big = work / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.megabytes):
                f.write(os.urandom(1024 * 1024))
        transfer = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024,
                                  max_concurrency=10)
        copies, uploads, downloads = [], [], []
        for run in range(args.runs):
            copies.append(timed(lambda: shutil.copyfile(big, work / "copy.bin")))
            (work / "copy.bin").unlink()
            key = f"big-{run}"
            uploads.append(timed(lambda k=key: s3.upload_file(str(big), "bench", k, Config=transfer)))
            downloads.append(timed(lambda k=key: s3.download_file("bench", k, str(work / "down.bin"),
                                                                  Config=transfer)))
            (work / "down.bin").unlink()
        floor, up, down = (statistics.median(x) for x in (copies, uploads, downloads))
        mb = args.megabytes
        print(f"large object ({mb} MiB, median of {args.runs}):")
        print(f"  cp on the same disk       {mb / floor:8.1f} MiB/s")
        print(f"  forklift S3 upload_file   {mb / up:8.1f} MiB/s   {up / floor:5.1f}x the cp time")
        print(f"  forklift S3 download_file {mb / down:8.1f} MiB/s   {down / floor:5.1f}x the cp time")

        payload = os.urandom(4096)
        local = work / "small"
        local.mkdir()
        write_floor = timed(lambda: [(local / f"o{i}").write_bytes(payload) for i in range(args.small)])
        puts = timed(lambda: [s3.put_object(Bucket="bench", Key=f"small/o{i}", Body=payload)
                              for i in range(args.small)])
        gets = timed(lambda: [s3.get_object(Bucket="bench", Key=f"small/o{i}")["Body"].read()
                              for i in range(args.small)])
        print(f"small objects ({args.small} x 4 KiB, one client, one at a time):")
        print(f"  local file writes         {args.small / write_floor:8.0f} /s")
        print(f"  forklift S3 PutObject     {args.small / puts:8.0f} /s")
        print(f"  forklift S3 GetObject     {args.small / gets:8.0f} /s")
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
