"""The identity platform's answers: JSON documents and its error shape.

An error is ``{"error", "error_description" ("AADSTS<code>: …" then, on lines of their own
(CRLF), the trace and correlation ids and the time, as Entra writes them), "error_codes",
"timestamp", "trace_id", "correlation_id"}``, status 400 or 401.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import msgspec

from graphpost.asgi import Response
from graphpost.errors import SignInError

JSON = b"application/json; charset=utf-8"
HTML = b"text/html; charset=utf-8"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NO_STORE = [(b"cache-control", b"no-store, no-cache"), (b"pragma", b"no-cache")]
_encode = msgspec.json.Encoder().encode


def correlation_id(headers: dict[str, str]) -> str:
    """The caller's ``client-request-id`` when it is a GUID (MSAL sends one), else a new one."""
    given = headers.get("client-request-id", "")
    return given.lower() if _GUID.match(given) else str(uuid.uuid4())


def json_response(doc: dict[str, Any], *, status: int = 200, no_store: bool = False) -> Response:
    return Response(
        status, _encode(doc), content_type=JSON, headers=list(NO_STORE) if no_store else []
    )


def error_document(error: SignInError, correlation: str) -> dict[str, Any]:
    trace = str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    description = (
        f"AADSTS{error.aadsts}: {error.message}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
    )
    return {
        "error": error.error,
        "error_description": description,
        "error_codes": [error.aadsts],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
    }


def error_response(error: SignInError, correlation: str) -> Response:
    response = json_response(error_document(error, correlation), status=error.status,
                             no_store=True)  # fmt: skip
    if error.status == 401:  # a bad token wants a bearer token; a bad client, its credentials
        challenge = (
            b'Bearer error="invalid_token"' if error.error == "invalid_token"
            else b'Basic realm="graphpost"'
        )  # fmt: skip
        response.headers.append((b"www-authenticate", challenge))
    return response
