"""The benchmark's LTI 1.3 platform: OIDC authorization endpoint and JWKS, nothing else.

Run as its own process by ``bench/launch.py``::

    python bench/fake_platform.py --port 8100 --client-id bench-client \
        --redirect-uri http://127.0.0.1:8200/lti/launch --signers 2

``GET /auth?...`` takes the tool's authentication request (the 302 target of a login),
checks it the way a platform would, and answers with ``{"id_token": ..., "state": ...}``
(a browser would get an auto-submitting form; the load clients post the form themselves).
Each id_token is RS256-signed afresh, in a pool of worker processes, so that the ~1 ms of
RSA signing per launch lands neither on the load clients nor on the servers measured.
``GET /jwks`` publishes the public key.

The ``login_hint`` the clients send says who launches from where: ``u<user>-c<course>-l<link>``,
so each launch carries realistic, varied claims (sub, name, course, activity).

The file is not called ``platform.py``: ``launch.py`` runs with ``bench/`` first on
``sys.path``, where that name would shadow the standard library's ``platform`` module.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"
TOKEN_SECONDS = 300
_HINT = re.compile(r"^u(\d{1,6})-c(\d{1,4})-l(\d{1,4})$")

# Set in each signing process by _init_signer: parsed once, since parsing an RSA key
# validates it and costs far more than a signature.
_signer_key: rsa.RSAPrivateKey | None = None
_signer_kid = ""


def _init_signer(private_pem: bytes, kid: str) -> None:
    global _signer_key, _signer_kid
    # The platform's parent handles Ctrl-C and shuts the pool down; workers must not
    # print a traceback each when the terminal's SIGINT reaches the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(private_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    _signer_key, _signer_kid = key, kid


def id_token_claims(
    *, issuer: str, client_id: str, nonce: str, target_link_uri: str, login_hint: str, now: int
) -> dict[str, Any]:
    """Claims of an LtiResourceLinkRequest for the person, course and activity of the hint."""
    match = _HINT.match(login_hint)
    user, course, link = (int(g) for g in match.groups()) if match else (0, 0, 0)
    return {
        "iss": issuer,
        "aud": client_id,
        "sub": f"bench-user-{user}",
        "nonce": nonce,
        "iat": now,
        "exp": now + TOKEN_SECONDS,
        LTI + "message_type": "LtiResourceLinkRequest",
        LTI + "version": "1.3.0",
        LTI + "deployment_id": "1",
        LTI + "target_link_uri": target_link_uri,
        LTI + "resource_link": {
            "id": f"course-{course}-activity-{link}",
            "title": f"Activité {link} du cours {course}",
        },
        LTI + "roles": [LEARNER],
        LTI + "context": {
            "id": f"course-{course}",
            "label": f"DATA-{course:03d}",
            "title": f"Transformation numérique, groupe {course}",
            "type": [COURSE_OFFERING],
        },
        "name": f"Personne {user} Banc",
        "given_name": f"Personne {user}",
        "family_name": "Banc",
        "email": f"personne{user}@organisme.example",
        LTI + "launch_presentation": {"locale": "fr-CA"},
    }


def sign_id_token(claims: dict[str, Any]) -> str:
    """Runs in a signing process (see _init_signer)."""
    assert _signer_key is not None, "signer not initialised"
    return jwt.encode(claims, _signer_key, algorithm="RS256", headers={"kid": _signer_kid})


class Platform:
    """Configuration and signing pool shared by the request handler threads."""

    def __init__(
        self, issuer: str, client_id: str, redirect_uris: Sequence[str], signers: int
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uris = frozenset(redirect_uris)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "bench-" + secrets.token_hex(6)
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        self.jwks_body = json.dumps({"keys": [jwk]}).encode()
        from cryptography.hazmat.primitives import serialization

        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.pool = ProcessPoolExecutor(
            max_workers=signers, initializer=_init_signer, initargs=(pem, self.kid)
        )
        self.signed = 0

    def warm_up(self, signers: int) -> None:
        """Start every signing process now rather than during the first measured round."""
        claims = id_token_claims(
            issuer=self.issuer,
            client_id=self.client_id,
            nonce="warm-up",
            target_link_uri="http://127.0.0.1/",
            login_hint="u0-c0-l0",
            now=int(time.time()),
        )
        for future in [self.pool.submit(sign_id_token, claims) for _ in range(signers * 2)]:
            future.result(timeout=60)

    def authorize(self, query: dict[str, str]) -> tuple[HTTPStatus, dict[str, str]]:
        """The OIDC authentication request (LTI 1.3 security framework, 5.1.1.2)."""
        expected = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": self.client_id,
        }
        for name, value in expected.items():
            if query.get(name) != value:
                return HTTPStatus.BAD_REQUEST, {"error": f"{name} must be {value!r}"}
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return HTTPStatus.BAD_REQUEST, {"error": f"redirect_uri {redirect_uri!r} unknown"}
        for name in ("state", "nonce", "login_hint"):
            if not query.get(name):
                return HTTPStatus.BAD_REQUEST, {"error": f"{name} missing"}
        claims = id_token_claims(
            issuer=self.issuer,
            client_id=self.client_id,
            nonce=query["nonce"],
            target_link_uri=redirect_uri,
            login_hint=query["login_hint"],
            now=int(time.time()),
        )
        token = self.pool.submit(sign_id_token, claims).result(timeout=30)
        self.signed += 1
        return HTTPStatus.OK, {"id_token": token, "state": query["state"]}


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps each load client's connection to the platform open across launches.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait
    # for the client's delayed ACK of the headers, 40 ms per launch once clients are busy.
    disable_nagle_algorithm = True
    platform: ClassVar[Platform]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would cost more CPU than the answer itself

    def _send(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/jwks":
            self._send(HTTPStatus.OK, self.platform.jwks_body)
        elif parts.path == "/auth":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, answer = self.platform.authorize(query)
            self._send(status, json.dumps(answer).encode())
        else:
            self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", default="bench-client")
    parser.add_argument(
        "--redirect-uri", action="append", default=[], help="accepted launch URL (repeatable)"
    )
    parser.add_argument("--signers", type=int, default=2, help="signing processes")
    args = parser.parse_args(argv)
    issuer = f"http://127.0.0.1:{args.port}"
    platform = Platform(issuer, args.client_id, args.redirect_uri, args.signers)
    Handler.platform = platform
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    # The parent stops this process with SIGTERM; turn it into a clean shutdown.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        platform.warm_up(args.signers)
        print(f"ready {issuer} kid={platform.kid}", flush=True)
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
        platform.pool.shutdown(wait=True, cancel_futures=True)
        print(f"signed {platform.signed} id_tokens", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
