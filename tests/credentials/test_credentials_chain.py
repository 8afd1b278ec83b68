"""The default chain: explicit → provider function → docker config → ECR → anonymous."""

from __future__ import annotations

import asyncio
import base64
import json

from forklift.credentials import ANONYMOUS, Credentials, KeychainChain
from forklift.credentials.chain import default_keychain, prefetch
from forklift.credentials.functions import FunctionRegistry


def counting_provider(make_handler, log, username="fn-user", password="fn-pass"):
    return make_handler("counting.py", f"""
        with open({str(log)!r}, "a") as f:
            f.write(json.dumps(event) + "\\n")
        return {{"Credentials": {{"Username": {username!r}, "Password": {password!r}}}}}
    """)


def test_sources_in_order(settings, docker_config, make_handler, tmp_path):
    docker_config.write_text(json.dumps({"auths": {
        "r.example": {"auth": base64.b64encode(b"docker-user:docker-pass").decode()},
        "d.example": {"auth": base64.b64encode(b"d-user:d-pass").decode()},
    }}))
    log = tmp_path / "calls.log"
    arn = FunctionRegistry(settings).register("prov", handler=counting_provider(make_handler, log)).arn

    explicit = default_keychain(settings, explicit=Credentials("cli-user", "cli-pass"), explicit_registry="r.example",
                                function_arn=arn, image="r.example/team/app:1")
    assert isinstance(explicit, KeychainChain)
    assert explicit.resolve("r.example", "team/app") == Credentials("cli-user", "cli-pass")
    assert not log.exists()  # an explicit answer means the provider is never run

    with_function = default_keychain(settings, function_arn=arn, image="r.example/team/app:1")
    assert with_function.resolve("r.example", "team/app") == Credentials("fn-user", "fn-pass")
    assert with_function.resolve("r.example", "") == Credentials("fn-user", "fn-pass")  # the ping
    # the provider answers for its image's registry only; others fall through to docker's config
    assert with_function.resolve("d.example", "x") == Credentials("d-user", "d-pass")
    assert len(log.read_text().splitlines()) == 1

    plain = default_keychain(settings)
    assert plain.resolve("r.example", "team/app") == Credentials("docker-user", "docker-pass")
    assert plain.resolve("nowhere.example", "team/app") == ANONYMOUS
    assert default_keychain(settings, docker_config=False).resolve("r.example", "team/app") == ANONYMOUS


def test_function_without_image_is_asked_per_repository_once(settings, make_handler, tmp_path):
    log = tmp_path / "calls.log"
    arn = FunctionRegistry(settings).register("prov", handler=counting_provider(make_handler, log)).arn
    keychain = default_keychain(settings, function_arn=arn)
    for _ in range(3):
        keychain.resolve("a.example", "one")
        keychain.resolve("a.example", "two")
        keychain.resolve("a.example", "")  # the ping reuses an answer for the registry
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events == [{"registry": "a.example", "repository": "one", "image": "a.example/one"},
                      {"registry": "a.example", "repository": "two", "image": "a.example/two"}]


def test_explicit_anonymous_credentials_are_ignored(settings, docker_config):
    docker_config.write_text(json.dumps({"auths": {"r.example": {"auth": base64.b64encode(b"u:p").decode()}}}))
    keychain = default_keychain(settings, explicit=ANONYMOUS)
    assert keychain.resolve("r.example", "x") == Credentials("u", "p")


def test_prefetch_resolves_off_the_event_loop_then_the_pull_hits_the_cache(settings, make_handler, tmp_path):
    log = tmp_path / "calls.log"
    arn = FunctionRegistry(settings).register("prov", handler=counting_provider(make_handler, log)).arn
    keychain = default_keychain(settings, function_arn=arn, image="r.example/team/app:1")
    assert asyncio.run(prefetch(keychain, "r.example/team/app:1")) == Credentials("fn-user", "fn-pass")
    assert keychain.resolve("r.example", "team/app") == Credentials("fn-user", "fn-pass")
    assert len(log.read_text().splitlines()) == 1
