"""Build tokens: BinderHub's short-lived proof that a /build request comes from a launch page.

A launch page (`/v2/<provider>/<spec>`) is handed a token it passes to
`/build/<provider>/<spec>?build_token=...`. The token is a JWT signed with HS256
whose audience is the "<provider>/<spec>" being launched (the raw spec, as it
appears in the URL), whose `exp` is a few minutes away, and whose `origin` claim
records the site that issued it: the network location of the request's Origin
header, or its Host header when there is no Origin.

Everything here is pure: time comes in as `now` (seconds since the epoch).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import jwt

__all__ = ["BuildTokenError", "make_build_token", "check_build_token", "token_origin"]

_ALGORITHM = "HS256"


class BuildTokenError(Exception):
    """A build token is present but not valid for this request; the message says why."""


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def token_origin(origin_header: str | None, host_header: str | None) -> str:
    """The origin a build token is bound to, for a request with these headers.

    As BinderHub: the Origin header's network location (scheme dropped, so it has
    the Host header's form), else the Host header. Empty if neither is present.
    """
    if origin_header is not None:
        return urllib.parse.urlsplit(origin_header).netloc
    return host_header or ""


def make_build_token(secret: str | bytes, provider_spec: str, origin: str, expires_seconds: float, now: float) -> str:
    """A build token for launching `provider_spec` ("<provider>/<raw spec>") from `origin`."""
    if not secret:
        raise ValueError("build tokens need a secret (gateway.build_token_secret)")
    claims = {"aud": provider_spec, "exp": int(now + expires_seconds), "origin": origin}
    return jwt.encode(claims, _key(secret), algorithm=_ALGORITHM)


def check_build_token(
    token: str, secret: str | bytes, provider_spec: str, origin: str, now: float, check_origin: bool = True
) -> dict[str, Any]:
    """The token's claims if it is valid for `provider_spec` from `origin` at `now`.

    Raises BuildTokenError with a message for a person otherwise. Only HS256 is
    accepted: a token naming another algorithm (including "none") is refused.
    """
    if not secret:
        raise BuildTokenError("Invalid build token: this service has no build_token_secret to check it with")
    try:
        claims = jwt.decode(
            token,
            _key(secret),
            algorithms=[_ALGORITHM],
            audience=provider_spec,
            # Expiry is checked below against `now`, so this stays a pure function.
            options={"verify_exp": False, "require": ["aud", "exp"]},
        )
    except jwt.InvalidAudienceError:
        raise BuildTokenError(f"Invalid build token: it was issued for another repository, not {provider_spec}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise BuildTokenError(f"Invalid build token: it has no {exc.claim!r} claim") from None
    except jwt.PyJWTError:
        raise BuildTokenError("Invalid build token: it is malformed or was not signed by this service") from None
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise BuildTokenError("Invalid build token: its expiry is not a number")
    if now >= exp:
        raise BuildTokenError("Invalid build token: it has expired; reload the launch page to get a new one")
    if check_origin and claims.get("origin") != origin:
        raise BuildTokenError(f"Invalid build token: it was issued for another site, not {origin or 'this one'}")
    return claims
