"""`forklift images …` as a user runs it: a real subprocess against the real registries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def forklift(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "forklift", *args], input=stdin, capture_output=True, text=True,
                            env=os.environ.copy(), timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"forklift {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def test_build_push_pull_inspect_ls_rm_prune(forklift_home: Path, basic_registry, busybox_rootfs: Path, tmp_path):
    reference = f"{basic_registry.address}/cli/busybox:1.0"
    password = basic_registry.password + "\n"
    built = forklift("images", "build", str(busybox_rootfs), "--tag", reference, "--cmd", "sh -c 'cat /etc/motd'",
                     "--env", "A=1", "--push", "--username", basic_registry.username, "--password-stdin",
                     stdin=password)
    digest = built.stdout.split("Digest: ")[1].split()[0]
    assert f"Pushed: {reference}" in built.stdout

    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('training')\n")
    layered = forklift("images", "build", str(code), "--tag", f"{basic_registry.address}/cli/train:1", "--base",
                       reference, "--dest", "/opt/ml/code", "--workdir", "/opt/ml/code",
                       "--entrypoint", '["python3", "train.py"]')
    assert "Digest: sha256:" in layered.stdout

    inspected = json.loads(forklift("images", "inspect", f"{basic_registry.address}/cli/train:1").stdout)
    assert len(inspected["Layers"]) == 2
    assert inspected["Config"]["config"]["Entrypoint"] == ["python3", "train.py"]
    assert "Cmd" not in inspected["Config"]["config"]  # a new entrypoint drops the base image's cmd
    assert inspected["Config"]["config"]["WorkingDir"] == "/opt/ml/code"
    assert len(inspected["Config"]["rootfs"]["diff_ids"]) == 2

    forklift("images", "rm", reference, f"{basic_registry.address}/cli/train:1")
    pruned = forklift("images", "prune")
    assert "Deleted 6 blobs" in pruned.stdout  # per image: its own layer, config and manifest

    pulled = forklift("images", "pull", reference, "--username", basic_registry.username, "--password-stdin",
                      stdin=password)
    assert f"Digest: {digest}" in pulled.stdout
    assert "layer 1/1: downloaded" in pulled.stderr  # plain progress lines when not on a terminal
    assert basic_registry.password not in pulled.stdout + pulled.stderr
    listing = forklift("images", "ls").stdout
    repository, tag = reference.rsplit(":", 1)
    assert repository in listing.split() and tag in listing.split() and "linux/amd64" in listing
    as_json = json.loads(forklift("images", "ls", "-o", "json").stdout)["Images"]
    assert [i["Reference"] for i in as_json] == [reference] and as_json[0]["Digest"] == digest


def test_push_from_oci_layout_made_by_umoci(forklift_home: Path, basic_registry, busybox_rootfs: Path, tmp_path):
    """umoci writes the layout (and omits mediaType in its manifest); forklift pushes it; skopeo reads it back."""
    layout = tmp_path / "layout"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:tiny"], check=True)
    subprocess.run(["umoci", "insert", "--image", f"{layout}:tiny", str(busybox_rootfs), "/"], check=True,
                   capture_output=True)
    reference = f"{basic_registry.address}/cli/from-umoci:tiny"
    forklift("images", "push", f"oci:{layout}:tiny", reference, "--username", basic_registry.username,
             "--password-stdin", stdin=basic_registry.password + "\n")
    inspected = subprocess.run(
        ["skopeo", "inspect", "--creds", f"{basic_registry.username}:{basic_registry.password}",
         "--cert-dir", str(forklift_home / "certs.d" / basic_registry.address), f"docker://{reference}"],
        capture_output=True, text=True, check=True)
    assert len(json.loads(inspected.stdout)["Layers"]) == 1


def test_skopeo_pushed_image_pulls_with_forklift(forklift_home: Path, basic_registry, busybox_rootfs: Path, tmp_path):
    layout = tmp_path / "layout"
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:s"], check=True)
    subprocess.run(["umoci", "insert", "--image", f"{layout}:s", str(busybox_rootfs), "/"], check=True,
                   capture_output=True)
    reference = f"{basic_registry.address}/cli/by-skopeo:1"
    subprocess.run(["skopeo", "copy", "--dest-creds", f"{basic_registry.username}:{basic_registry.password}",
                    "--dest-cert-dir", str(forklift_home / "certs.d" / basic_registry.address),
                    "--format", "v2s2", f"oci:{layout}:s", f"docker://{reference}"], check=True, capture_output=True)
    pulled = forklift("images", "pull", reference, "-u", basic_registry.username, "--password-stdin",
                      stdin=basic_registry.password + "\n")
    assert "Digest: sha256:" in pulled.stdout
    inspected = json.loads(forklift("images", "inspect", reference).stdout)
    assert inspected["MediaType"] == "application/vnd.docker.distribution.manifest.v2+json"


def test_errors_are_one_clear_line(forklift_home: Path, basic_registry):
    wrong = forklift("images", "pull", f"{basic_registry.address}/cli/busybox:1.0", "-u", "alice",
                     "--password-stdin", stdin="hunter2-wrong\n", check=False)
    assert wrong.returncode == 1
    assert f"authentication to {basic_registry.address} failed for user alice: 401" in wrong.stderr
    assert "Traceback" not in wrong.stderr and "hunter2-wrong" not in wrong.stderr

    invalid = forklift("images", "pull", "Foo/Bar", check=False)
    assert invalid.returncode == 1 and "must be lowercase" in invalid.stderr

    missing = forklift("images", "inspect", "nothing/here:1", check=False)
    assert missing.returncode == 1 and "not in the local store" in missing.stderr
