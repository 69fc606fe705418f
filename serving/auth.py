"""Who may write: POST /events (tomorrow's training data) and POST /reload need the bearer token
set in ADFLOW_SERVING_TOKEN. Reads stay open. Without a token the service is read-only, and it
only starts on a loopback address, where nobody else on the network can reach it."""
from __future__ import annotations

import hmac
import ipaddress
import os

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

TOKEN_ENV = "ADFLOW_SERVING_TOKEN"
MIN_TOKEN_LENGTH = 16  # a guessable token is no protection on an open port
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class InsecureBind(SystemExit):
    """Refusing to start: the address or the token would leave the writes open."""


def token_from_env(env: dict[str, str] | None = None) -> str | None:
    token = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    if token and len(token) < MIN_TOKEN_LENGTH:
        raise InsecureBind(f"{TOKEN_ENV} is shorter than {MIN_TOKEN_LENGTH} characters; generate one with "
                           "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return token or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a hostname other than localhost may resolve to anything
        return False


def check_bind(host: str, token: str | None) -> None:
    """Raises InsecureBind (exits with its message) for a non-loopback address without a token."""
    if token is None and not is_loopback(host):
        raise InsecureBind(f"refusing to serve on {host!r} without a write token: anyone who can reach it "
                           f"could post events or reload. Set {TOKEN_ENV} (at least {MIN_TOKEN_LENGTH} "
                           f"characters), or bind 127.0.0.1.")


def write_guard(token: str | None):
    """A FastAPI dependency admitting requests that carry `Authorization: Bearer <token>` (the OpenAPI
    security scheme `bearer`); 401 with a Bearer challenge otherwise."""
    scheme = HTTPBearer(auto_error=False, scheme_name="bearer",
                        description=f"The token set in {TOKEN_ENV} when the service started; required by "
                                    "POST /events and POST /reload.")
    expected = None if token is None else token.encode()

    def require_token(credentials: HTTPAuthorizationCredentials | None = Security(scheme)) -> None:
        if expected is None:
            raise HTTPException(401, f"writes are disabled: the service was started without {TOKEN_ENV}",
                                headers=CHALLENGE)
        # Constant time, so the response time does not tell how much of a guess was right.
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(401, "missing or wrong bearer token", headers=CHALLENGE)

    return require_token
