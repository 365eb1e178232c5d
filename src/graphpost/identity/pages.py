"""The sign-in pages a person sees: the authorization code flow's sign-in form, the device
code page, and the pages that end them. Every value written into a page is HTML-escaped;
pages are not framed (``frame-ancestors 'none'``) and run no script but their own."""

from __future__ import annotations

import secrets
from html import escape

from graphpost.asgi import Response
from graphpost.identity.responses import HTML

CSRF_COOKIE = "graphpost_csrf"
_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}"
    "main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;"
    "box-shadow:0 2px 6px rgba(0,0,0,.2)}h1{font-size:1.4rem;font-weight:600}"
    "label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password],"
    "input[type=email]{width:100%;box-sizing:border-box;padding:.4rem}"
    "button{margin-top:1rem;padding:.4rem 1.2rem}.error{color:#a80000}"
    ".note{color:#555;font-size:.85rem}"
)


def _headers(nonce: str | None = None) -> list[tuple[bytes, bytes]]:
    script = f" script-src 'nonce-{nonce}';" if nonce else ""
    return [
        (b"cache-control", b"no-store, no-cache"),
        (b"pragma", b"no-cache"),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (
            b"content-security-policy",
            f"default-src 'none'; style-src 'unsafe-inline';{script} "
            "frame-ancestors 'none'".encode(),
        ),
    ]


def page(title: str, body: str, *, status: int = 200, nonce: str | None = None) -> Response:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return Response(status, html.encode("utf-8"), content_type=HTML, headers=_headers(nonce))


def csrf_cookie(token: str, secure: bool) -> tuple[bytes, bytes]:
    flags = "; Secure" if secure else ""
    return (
        b"set-cookie",
        f"{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{flags}".encode(),
    )


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def cookie_value(header: str | None, name: str) -> str | None:
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _hidden(fields: dict[str, str]) -> str:
    return "".join(
        f'<input type=hidden name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )


def sign_in_form(
    *, action: str, app_name: str, carried: dict[str, str], csrf: str, username: str,
    error: str | None,
) -> str:  # fmt: skip
    problem = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    return (
        f"<p>to continue to <b>{escape(app_name)}</b></p>{problem}"
        f'<form method=post action="{escape(action)}">{_hidden(carried)}'
        f'<input type=hidden name=csrf_token value="{escape(csrf)}">'
        "<label for=username>Email or user name</label>"
        f"<input id=username name=username type=email autocomplete=username required "
        f'value="{escape(username)}">'
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password required>"
        "<button type=submit>Sign in</button></form>"
    )


def device_form(
    *, action: str, csrf: str, code: str, username: str, error: str | None,
    app_name: str | None = None,
) -> str:  # fmt: skip
    problem = f"<p class=error role=alert>{escape(error)}</p>" if error else ""
    asking = (
        f"<p><b>{escape(app_name)}</b> is asking for access. Sign in to allow or decline "
        "it.</p>" if app_name
        else "<p>Enter the code shown by the app or device, and sign in to allow or decline "
        "its access.</p>"
    )  # fmt: skip
    return (
        f"{asking}"
        f'{problem}<form method=post action="{escape(action)}">'
        f'<input type=hidden name=csrf_token value="{escape(csrf)}">'
        "<label for=user_code>Code</label>"
        f"<input id=user_code name=user_code type=text autocomplete=off required "
        f'value="{escape(code)}">'
        "<label for=username>Email or user name</label>"
        f"<input id=username name=username type=email autocomplete=username "
        f'value="{escape(username)}">'
        "<label for=password>Password</label>"
        "<input id=password name=password type=password autocomplete=current-password>"
        "<button type=submit name=action value=allow>Sign in and allow</button> "
        "<button type=submit name=action value=decline>Decline</button></form>"
    )


def form_post(redirect_uri: str, fields: dict[str, str]) -> Response:
    """``response_mode=form_post``: a form that posts the answer to the app."""
    nonce = secrets.token_urlsafe(12)
    body = (
        f'<form id=answer method=post action="{escape(redirect_uri)}">{_hidden(fields)}'
        "<noscript><button type=submit>Continue</button></noscript></form>"
        f'<script nonce="{nonce}">document.getElementById("answer").submit()</script>'
    )
    return page("Signing you in", body, nonce=nonce)
