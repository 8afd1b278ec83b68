"""The token server of the local registry (`forklift registry start --auth token`).

Docker Registry v2 token auth as CNCF distribution 2.8 checks it: an ES256 JWT whose `x5c` header
holds a signing certificate that chains to the registry's `rootcertbundle` (the local registry's CA),
`iss` and `aud` (a string) as configured, `exp`/`nbf`, and an `access` list. Users are checked
against the registry's htpasswd file (bcrypt); a known user gets pull, push and delete on every
repository, anyone else a token that grants nothing (200, as the protocol says), which the registry
then refuses.

    python -m forklift.tokenserver CONFIG.json     # {"port", "pki", "htpasswd", "issuer", "service"}

GET /token (HTTP Basic) and POST /token (OAuth2 password grant) are served over TLS on 127.0.0.1.
Requests are bounded: a form over 64 KiB is refused, a client silent for 10 s is dropped, at most 64
connections are served at once (more wait in the listen queue), and http.server's own limits hold
for the head (a 64 KiB line, 100 headers).
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from forklift.devregistry import Pki, issue_certificate

EXPIRES_IN = 300
MAX_FORM = 64 * 1024
CLIENT_TIMEOUT = 10.0
MAX_CONNECTIONS = 64
ACTIONS = ("pull", "push", "delete")


class TokenService:
    def __init__(self, config: dict):

        pki_dir = Path(config["pki"])
        self.pki = Pki(pki_dir, pki_dir / "ca.crt", pki_dir / "ca.key", pki_dir / "server.crt", pki_dir / "server.key")
        self.issuer, self.service = config["issuer"], config["service"]
        self.htpasswd = Path(config["htpasswd"])
        self.key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_certificate(self.pki, "forklift local registry token signer", self.key.public_key())
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]

    def _users(self) -> dict[str, bytes]:
        lines = self.htpasswd.read_text().splitlines()
        return {user: hashed.encode() for user, _, hashed in (line.partition(":") for line in lines) if hashed}

    def authenticate(self, username: str | None, password: str | None) -> bool:
        hashed = self._users().get(username or "")
        if not hashed or password is None:
            return False
        try:
            return bcrypt.checkpw(password.encode(), hashed)
        except ValueError:  # a password bcrypt cannot take (over 72 bytes), or a damaged hash: not this user
            return False

    def token(self, username: str | None, scopes: list[str]) -> dict:
        access = []
        if username:
            for scope in scopes:
                kind, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                if kind == "repository" and name:
                    granted = [a for a in actions.split(",") if a in ACTIONS]
                    access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": username or "", "aud": self.service, "exp": now + EXPIRES_IN,
                  "nbf": now - 1, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"x5c": self.x5c})
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": EXPIRES_IN, "issued_at": issued}


def _basic(header: str) -> tuple[str | None, str | None]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password


def handler_for(service: TokenService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = CLIENT_TIMEOUT

        def _answer(self, status: int, body: dict, extra: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                return self._answer(404, {"error": "not found"})
            query = parse_qs(url.query)
            user, password = _basic(self.headers.get("Authorization", ""))
            if user is not None and not service.authenticate(user, password):
                return self._answer(401, {"error": "unauthorized"},
                                    {"WWW-Authenticate": 'Basic realm="forklift local registry"'})
            scopes = [s for value in query.get("scope", []) for s in value.split()]
            self._answer(200, service.token(user, scopes))

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                return self._answer(404, {"error": "not found"})
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_FORM:
                self.close_connection = True
                return self._answer(413 if length > MAX_FORM else 400, {"error": "bad request body"})
            form = parse_qs(self.rfile.read(length).decode(errors="replace"))
            first = {k: v[0] for k, v in form.items()}
            if first.get("grant_type") != "password":
                return self._answer(400, {"error": "unsupported_grant_type"})
            if not service.authenticate(first.get("username"), first.get("password")):
                return self._answer(401, {"error": "invalid_grant"})
            self._answer(200, service.token(first["username"], first.get("scope", "").split()))

    return Handler


class BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most MAX_CONNECTIONS at once."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def serve(config: dict) -> None:
    service = TokenService(config)
    server = BoundedServer(("127.0.0.1", int(config["port"])), handler_for(service))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(service.pki.server_cert), str(service.pki.server_key))
    # The handshake happens in each connection's thread, so a client that stalls in it holds only its own.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(f"token server on https://localhost:{config['port']}/token", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(json.loads(Path(sys.argv[1]).read_text()))
