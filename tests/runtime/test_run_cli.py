"""`forklift run` as a user runs it: image from a private registry, pulled, unpacked and run on real runc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.imagetools import keychain
from forklift.config import load_settings
from forklift.images.build import BuildOptions, build
from forklift.images.imagestore import ImageStore
from forklift.images.push import push_sync, source_from_store


def forklift(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forklift", *args], input=stdin, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)


@pytest.fixture
def private_image(forklift_home: Path, basic_registry, busybox_rootfs: Path) -> str:
    store = ImageStore(load_settings())
    reference = f"{basic_registry.address}/run/busybox:1"
    image = build(store, [busybox_rootfs], tag=reference,
                  options=BuildOptions(cmd=["/bin/sh", "-c", "echo $GREETING from the image"], env=["GREETING=hi"]))
    push_sync(source_from_store(store, image.reference), reference, store, keychain=keychain(basic_registry))
    store.remove(reference)
    store.prune()
    return reference


def test_run_pulls_with_credentials_and_uses_the_image_config(private_image: str, basic_registry):
    result = forklift("run", "-u", basic_registry.username, "--password-stdin", private_image,
                      stdin=basic_registry.password + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi from the image\n"
    assert basic_registry.password not in result.stdout + result.stderr


def test_run_args_env_mounts_and_exit_code(private_image: str, basic_registry, tmp_path: Path):
    forklift("images", "pull", private_image, "-u", basic_registry.username, "--password-stdin",
             stdin=basic_registry.password + "\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("input\n")
    out = tmp_path / "out"
    out.mkdir()
    result = forklift("run", "--env", "EXTRA=1", "-v", f"{data}:/data:ro", "-v", f"{out}:/out",
                      "--instance-type", "ml.t3.medium", private_image,
                      "sh", "-c", 'echo "$GREETING $EXTRA"; cat /data/in.txt; echo written > /out/f; '
                                  'touch /data/x 2>/dev/null || echo read-only; exit 7')
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == ["hi 1", "input", "read-only"]
    assert (out / "f").read_text() == "written\n"
    # The container's directory (logs, overlay upper layer) went with it.
    assert not list((load_settings().home / "containers").glob("run-*"))


def test_unknown_instance_type_suggests_and_points_to_the_list(private_image: str):
    result = forklift("run", "--instance-type", "ml.m5.xlarg", private_image)
    assert result.returncode == 1
    assert "unknown instance type 'ml.m5.xlarg'; did you mean ml.m5.xlarge" in result.stderr
    assert "`forklift instance-types` lists the" in result.stderr and len(result.stderr) < 300


def test_a_taken_name_is_refused_and_the_other_containers_directory_kept(private_image: str, basic_registry):
    forklift("images", "pull", private_image, "-u", basic_registry.username, "--password-stdin",
             stdin=basic_registry.password + "\n")
    state = load_settings().home / "containers" / "taken-name"
    first = subprocess.Popen([sys.executable, "-m", "forklift", "run", "--name", "taken-name", private_image,
                              "sh", "-c", "echo up; sleep 60"], stdout=subprocess.PIPE, text=True,
                             env=os.environ.copy())
    try:
        assert first.stdout.readline() == "up\n"
        second = forklift("run", "--name", "taken-name", private_image, "true")
        assert second.returncode == 1 and "a container named taken-name exists already" in second.stderr
        assert (state / "container.json").exists()  # still the first one's
    finally:
        first.send_signal(signal.SIGINT)  # as Ctrl-C: the container is stopped, then its directory removed
        first.wait(60)
    assert not state.exists()


def test_run_honours_the_images_user_and_user_overrides_it(forklift_home: Path, basic_registry, busybox_rootfs):
    store = ImageStore(load_settings())
    reference = f"{basic_registry.address}/run/busybox-user:1"
    build(store, [busybox_rootfs], tag=reference,
          options=BuildOptions(cmd=["/bin/sh", "-c", 'echo "$(id -u):$(id -g) $HOME"'], user="1000:1000"))
    result = forklift("run", reference)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1000:1000 /home/app\n"  # HOME from the image's /etc/passwd
    result = forklift("run", "--user", "0", reference)
    assert result.stdout == "0:0 /root\n", result.stderr
    result = forklift("run", "--user", "nobody", reference)
    assert result.returncode == 1
    assert "user 'nobody' is not in the image's /etc/passwd" in result.stderr and "Traceback" not in result.stderr
