"""docker's `config.json` as a credentials source, and `login`/`logout` that write it.

Where: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.

    {"auths": {"https://index.docker.io/v1/": {"auth": "base64(user:password)"},
               "ghcr.io": {"identitytoken": "…"},          # OAuth2 refresh token
               "quay.io": {"registrytoken": "…"}},         # ready-made bearer token
     "credsStore": "desktop",                             # global helper
     "credHelpers": {"123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"}}

Precedence for one registry: its `credHelpers` entry, then `credsStore`, then `auths` (also when a
helper has nothing for that registry). Keys are normalized before matching: scheme and path are
dropped, `index.docker.io` and `registry-1.docker.io` mean `docker.io`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from forklift.atomicfile import write_atomically
from forklift.credentials import ANONYMOUS, Credentials
from forklift.credentials.errors import CredentialsError, HelperFailed
from forklift.credentials.helpers import helper_erase, helper_get, helper_store
from forklift.reference import DOCKER_HUB, InvalidReference, normalize_registry

log = logging.getLogger(__name__)

HUB_SERVER_URL = "https://index.docker.io/v1/"


def config_path(directory: Path | str | None = None) -> Path:
    if directory is None:
        env = os.environ.get("DOCKER_CONFIG")
        directory = Path(env).expanduser() if env else Path.home() / ".docker"
    return Path(directory) / "config.json"


def server_url(registry: str) -> str:
    """The key docker uses for a registry: Docker Hub's historical URL, else the host[:port]."""
    return HUB_SERVER_URL if registry == DOCKER_HUB else registry


def _normalize(key: str) -> str | None:
    try:
        return normalize_registry(key)
    except InvalidReference:
        return None


@dataclass
class DockerConfig:
    path: Path
    document: dict[str, object] = field(default_factory=dict)  # the whole file: unknown keys survive a save

    @classmethod
    def load(cls, path: Path | None = None) -> DockerConfig:
        path = path or config_path()
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise CredentialsError(f"cannot read docker config {path}: {exc.strerror}") from None
        try:
            document = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise CredentialsError(f"docker config {path} is not valid JSON (line {exc.lineno})") from None
        if not isinstance(document, dict):
            raise CredentialsError(f"docker config {path} is not a JSON object")
        return cls(path, document)

    @property
    def auths(self) -> dict[str, object]:
        auths = self.document.get("auths")
        return auths if isinstance(auths, dict) else {}

    def auth_keys(self, registry: str) -> list[str]:
        """The `auths` keys that mean `registry` (docker allows several spellings)."""
        return [key for key in self.auths if _normalize(key) == registry]

    def helper_for(self, registry: str) -> str | None:
        helpers = self.document.get("credHelpers")
        if isinstance(helpers, dict):
            for key, name in helpers.items():
                if _normalize(key) == registry and isinstance(name, str) and name:
                    return name
        store = self.document.get("credsStore")
        return store if isinstance(store, str) and store else None

    def auth_entry(self, registry: str) -> Credentials | None:
        for key in sorted(self.auth_keys(registry), key=lambda k: k != server_url(registry)):
            entry = self.auths.get(key)
            if isinstance(entry, dict):
                found = _credentials_from_entry(entry, key, self.path)
                if found is not None:
                    return found
        return None

    def save(self) -> None:
        """Write atomically, readable by the owner only (0600), like docker does."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.path.resolve() if self.path.is_symlink() else self.path
        write_atomically(target, (json.dumps(self.document, indent="\t") + "\n").encode(), mode=0o600, fsync=True)


def _credentials_from_entry(entry: dict[str, object], key: str, path: Path) -> Credentials | None:
    given_username, given_password = entry.get("username"), entry.get("password")
    username = given_username if isinstance(given_username, str) else None
    password = given_password if isinstance(given_password, str) else None
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            log.warning("ignoring the auth entry for %s in %s: not base64 of user:password", key, path)
            decoded = None
        if decoded is not None:
            user, sep, secret = decoded.partition(":")
            if not sep:
                log.warning("ignoring the auth entry for %s in %s: not base64 of user:password", key, path)
            else:
                username, password = user or username, secret or password
    identity = entry.get("identitytoken")
    if isinstance(identity, str) and identity:
        return Credentials(username=username, identity_token=identity)
    registry_token = entry.get("registrytoken")
    if isinstance(registry_token, str) and registry_token:
        return Credentials(registry_token=registry_token)
    if username and password:
        return Credentials(username=username, password=password)
    return None


class DockerConfigKeychain:
    """Credentials from docker's config.json and its helpers; read once, answers cached per registry."""

    def __init__(self, path: Path | None = None):
        self._path = path
        self._config: DockerConfig | None = None
        self._answers: dict[str, Credentials] = {}
        self._lock = threading.Lock()

    def resolve(self, registry: str, repository: str) -> Credentials:
        registry = _normalize(registry) or registry
        with self._lock:
            answer = self._answers.get(registry)
            if answer is None:
                answer = self._answers[registry] = self._lookup(registry)
            return answer

    def _lookup(self, registry: str) -> Credentials:
        if self._config is None:
            self._config = DockerConfig.load(self._path or config_path())
        config = self._config
        helper = config.helper_for(registry)
        if helper is not None:
            try:
                found = helper_get(helper, server_url(registry))
            except HelperFailed as exc:
                # A missing or broken helper must not stop anonymous pulls of public images.
                log.warning("%s; trying the next credentials source", exc)
                found = None
            if found is not None:
                log.debug("credentials for %s from docker-credential-%s", registry, helper)
                return found
        found = config.auth_entry(registry)
        if found is not None:
            log.debug("credentials for %s from %s", registry, config.path)
            return found
        return ANONYMOUS


def login(registry: str, username: str, password: str, *, path: Path | None = None) -> str:
    """Store credentials as `docker login` does; returns where they went (helper name or file)."""
    registry = normalize_registry(registry)
    if not username or not password:
        raise CredentialsError("login needs a user name and a password")
    config = DockerConfig.load(path or config_path())
    helper = config.helper_for(registry)
    auths = dict(config.auths)
    stale = config.auth_keys(registry)
    for key in stale:
        del auths[key]
    if helper is not None:
        helper_store(helper, server_url(registry), username, password)
        if stale:  # an older entry in the file would only confuse; the store holds the credentials now
            config.document["auths"] = auths
            config.save()
        return f"docker-credential-{helper}"
    auths[server_url(registry)] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    config.document["auths"] = auths
    config.save()
    return str(config.path)


def logout(registry: str, *, path: Path | None = None) -> bool:
    """Forget a registry's credentials (helper and `auths`); False when there were none."""
    registry = normalize_registry(registry)
    config = DockerConfig.load(path or config_path())
    removed = False
    helper = config.helper_for(registry)
    if helper is not None:
        removed = helper_erase(helper, server_url(registry))
    keys = config.auth_keys(registry)
    if keys:
        auths = dict(config.auths)
        for key in keys:
            del auths[key]
        config.document["auths"] = auths
        config.save()
        removed = True
    return removed
