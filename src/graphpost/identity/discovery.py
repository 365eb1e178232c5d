"""The identity platform's public documents: signing keys (JWKS), OpenID discovery, MSAL's
instance discovery and user realm."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from graphpost.auth.keys import KeySet
from graphpost.errors import SignInError

# the tenant names that stand for "whichever tenant the user or app belongs to"
MULTI_TENANT = frozenset({"common", "organizations", "consumers"})


def jwks(keys: KeySet) -> dict[str, Any]:
    return keys.jwks()


def openid_configuration(base: str, tenant_segment: str, tenant_id: str | None) -> dict[str, Any]:
    """The document at ``/{tenant}/v2.0/.well-known/openid-configuration``: every endpoint an
    absolute URL of this server, under the tenant as the caller named it. For ``common`` and
    ``organizations`` the issuer is a template (``{tenantid}``), as Entra publishes it."""
    root = f"{base}/{tenant_segment}"
    issuer_tenant = tenant_id or "{tenantid}"
    host = urlsplit(base).netloc
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{root}/openid/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": False,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name", "preferred_username",
            "oid", "tid", "ver",
        ],
        "grant_types_supported": [
            "authorization_code", "client_credentials", "password", "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "code_challenge_methods_supported": ["S256", "plain"],
        "tenant_region_scope": None,
        "cloud_instance_name": host,
        "cloud_graph_host_name": host,
        "msgraph_host": host,
    }  # fmt: skip


def instance_discovery(base: str, authorization_endpoint: str | None) -> dict[str, Any]:
    """MSAL's ``/common/discovery/instance`` answer: this server is its own cloud."""
    host = urlsplit(base).netloc
    tenant = "common"
    if authorization_endpoint:
        try:
            path = urlsplit(authorization_endpoint[:2000]).path
        except ValueError:
            raise SignInError(
                "invalid_request", 90014, "The authorization_endpoint parameter is not a "
                "valid URL.",
            ) from None  # fmt: skip
        parts = [p for p in path.split("/") if p]
        if parts:
            tenant = quote(parts[0][:255], safe="")
    return {
        "tenant_discovery_endpoint": f"{base}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }


def user_realm(login: str, domain_known: bool, domain: str) -> dict[str, Any]:
    """``/common/userrealm/{user}?api-version=1.0``: every account here is a managed one."""
    return {
        "ver": "1.0",
        "account_type": "Managed" if domain_known else "Unknown",
        "domain_name": domain,
        "cloud_instance_name": "graphpost",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        "login": login,
    }
