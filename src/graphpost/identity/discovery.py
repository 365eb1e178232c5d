"""The public half of the identity platform that exists so far: signing keys (JWKS) and the
OpenID discovery document, at the Microsoft identity platform's paths. The token endpoints
come later and slot in beside these."""

from __future__ import annotations

import msgspec

from graphpost.asgi import JSON_TYPE, Request, Response
from graphpost.auth.keys import SigningKey


class KeysEndpoint:
    def __init__(self, key: SigningKey, base_url: str) -> None:
        self.key = key
        self.base = base_url.rstrip("/")

    async def __call__(self, request: Request) -> Response | None:
        if request.method != "GET":
            return None
        parts = request.segments()
        # /{tenant}/discovery/v2.0/keys, /{tenant}/discovery/keys, /.well-known/jwks.json
        if (parts[-1:] == ["keys"] and "discovery" in parts[:3]) or parts == [
            ".well-known",
            "jwks.json",
        ]:
            return Response(
                200, msgspec.json.encode({"keys": [self.key.jwk()]}), content_type=JSON_TYPE
            )
        if len(parts) >= 3 and parts[-2:] == [".well-known", "openid-configuration"]:
            tenant = parts[0]
            doc = {
                "issuer": f"https://sts.windows.net/{tenant}/",
                "jwks_uri": f"{self.base}/{tenant}/discovery/v2.0/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint": f"{self.base}/{tenant}/oauth2/v2.0/token",
                "response_types_supported": ["code", "token"],
                "subject_types_supported": ["pairwise"],
            }
            return Response(200, msgspec.json.encode(doc), content_type=JSON_TYPE)
        return None
