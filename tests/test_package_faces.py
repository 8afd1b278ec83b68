"""A module loads without the package around it: the faces of `forklift.api`, `forklift.control` and
`forklift.demo` import nothing, so a command that needs one module (the instance types, the sample
data, the request validator) does not start the whole server or demo. Checked in a fresh interpreter,
by which modules end up loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(module: str, *candidates: str) -> list[str]:
    code = (f"import sys, json, {module}; "
            f"print(json.dumps([m for m in {list(candidates)!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("module,not_loaded", [
    ("forklift.control.instance_types", ["forklift.control.plane", "forklift.control.inference",
                                         "forklift.runtime.runc", "sqlalchemy"]),
    ("forklift.demo.samples", ["forklift.demo.flows", "forklift.demo.main", "boto3"]),
    ("forklift.api.validation", ["forklift.api.app", "forklift.api.wiring", "forklift.control", "starlette"]),
    ("forklift.cli", ["forklift.config", "botocore", "forklift.cli.images"]),
])
def test_a_module_loads_without_its_package(module: str, not_loaded: list[str]) -> None:
    assert loaded_after(module, *not_loaded) == []


def test_the_server_package_still_offers_its_names() -> None:
    from forklift.api import ApiServices, MemoryLogSource, build_services, create_app

    assert callable(build_services) and callable(create_app)
    assert ApiServices().sagemaker_handlers == {} and MemoryLogSource().groups(None) == []
