"""The one place a JWT's signature and registered claims are checked (PyJWT), for our own
tokens and for those of trusted external issuers, with Entra's messages for each refusal."""

from __future__ import annotations

from typing import Any

import jwt

from graphpost.auth.keys import LEEWAY_SECONDS
from graphpost.domain import times
from graphpost.errors import AuthenticationError

INVALID = "Access token validation failure."


def decode_claims(
    token: str,
    key: Any,
    *,
    algorithms: list[str],
    audiences: list[str],
    require: list[str],
    issuer: str | None = None,
) -> dict[str, Any]:
    """The claims of ``token`` once its signature, audience, lifetime (with the leeway) and,
    when given, issuer are checked; AuthenticationError saying which failed."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=audiences,
            issuer=issuer,
            # the lifetime is checked below against the one clock (which the emulator's
            # controls can move forward), not PyJWT's reading of the system's
            options={
                "require": require, "verify_exp": False, "verify_nbf": False,
                "verify_iat": False,
            },
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("Lifetime validation failed, the token is expired.") from None
    except jwt.ImmatureSignatureError:
        raise AuthenticationError(
            "Lifetime validation failed, the token is not yet valid."
        ) from None
    except jwt.InvalidAudienceError:
        raise AuthenticationError(f"{INVALID} Invalid audience.") from None
    except jwt.InvalidIssuerError:
        raise AuthenticationError(f"{INVALID} Invalid issuer.") from None
    except jwt.InvalidSignatureError:
        raise AuthenticationError(f"{INVALID} Invalid signature.") from None
    except jwt.PyJWTError:
        raise AuthenticationError(f"{INVALID} The token's claims are not valid.") from None
    now = times.wall()
    for name in ("exp", "nbf", "iat"):
        if name in claims and (
            isinstance(claims[name], bool) or not isinstance(claims[name], int | float)
        ):
            raise AuthenticationError(f"{INVALID} The token's claims are not valid.")
    if "exp" in claims and claims["exp"] <= now - LEEWAY_SECONDS:
        raise AuthenticationError("Lifetime validation failed, the token is expired.")
    if "nbf" in claims and claims["nbf"] > now + LEEWAY_SECONDS:
        raise AuthenticationError("Lifetime validation failed, the token is not yet valid.")
    return claims
