from __future__ import annotations

from graphpost.domain import body, compose
from graphpost.domain.message import Message


def test_wrap_fragment_exactly_as_exchange() -> None:
    assert body.wrap_html("They were <b>awesome</b>!") == (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '\r\n<meta content="text/html; charset=us-ascii">\r\n</head>\r\n<body>\r\n'
        "They were <b>awesome</b>!\r\n</body>\r\n</html>\r\n"
    )


def test_full_document_is_not_wrapped_twice() -> None:
    doc = "<!DOCTYPE html><html><body>x</body></html>"
    assert body.wrap_html(doc) == doc
    assert body.wrap_html(body.wrap_html("a")) == body.wrap_html("a")
    assert body.wrap_html("") == ""


def test_preview_strips_tags_entities_and_invisible_parts() -> None:
    html = body.wrap_html("<style>p{color:red}</style>They were <b>awesome</b>&amp;more!")
    assert body.preview("html", html) == "They were awesome&more!"
    assert body.preview("html", "<p>one</p><p>two</p>") == "one\r\n\r\ntwo"
    assert body.preview("html", "a\n   b<br>c") == "a b\r\nc"
    assert body.preview("html", "<head><title>T</title></head>x") == "x"


def test_preview_limits_and_text() -> None:
    assert len(body.preview("text", "a " * 1000)) == 255
    assert body.preview("text", "  many   spaces \n\n next ") == "many   spaces \r\n\r\n next"
    assert body.preview("text", "") == ""
    assert len(body.preview("html", "<div>" + "word " * 1000 + "</div>")) <= 255


def test_content_type_any_case() -> None:
    assert body.content_type("HTML") == "html"
    assert body.content_type("Text") == "text"


def test_hostile_html_is_read_in_one_pass() -> None:
    """Bodies that made the old patterns scan to the end from every "<" (a 133 KB body held
    the API for 19 s): the same answers as before, from a linear reader."""
    n = 50_000
    assert body.preview("html", "<html>" + "<a>" * 1000 + "<" * n) == "<" * 255
    assert body.preview("html", "<html><body>" + "<style>" * n) == ""
    assert body.preview("html", "<body>" + "<!--" * n + "x").startswith("<!--<!--")
    assert body.preview("html", "<body>" + "<br" * n).startswith("<br<br")
    text = body.html_to_text(
        "<html><head><title>T</title><style>x{}</style></head><body><p>Hello <b>you</b>"
        "<!-- c --></p><script>bad()</script>there &amp; <br>end</body></html>"
    )
    assert text == "Hello you\r\nthere &\r\nend"
    original = "<html><body><p>a</p>" + "<body>" * n + "</body></html>"
    assert compose.quoted_body(_draft_with_html(original), None).count("<p>a</p>") == 1


def _draft_with_html(content: str) -> Message:
    from tests.unit.domain.drafts import draft

    return draft(body={"contentType": "html", "content": content})
