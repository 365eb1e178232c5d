"""The web page's signed session cookie and links, and the download file names."""

from __future__ import annotations

from graphpost.domain import times
from graphpost.errors import AlreadyExistsError, NotFoundError, StoreError
from graphpost.web.edge import _status, disposition, safe_filename
from graphpost.web.session import Signer


def test_a_session_reads_back_only_when_intact_ours_and_unexpired() -> None:
    signer = Signer(b"secret one")
    session, value = signer.new_session("user-1", 60)
    back = signer.session(value)
    assert back == session and back.user_id == "user-1" and len(back.csrf) >= 32
    assert Signer(b"secret two").session(value) is None  # another server's key
    body, mac = value.split(".")
    assert signer.session(f"{body}x.{mac}") is None
    assert signer.session(f"{body}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}") is None
    for junk in ("", ".", "a.b.c", "x" * 2000, "e30.", "\x00.\x00"):
        assert signer.session(junk) is None
    _, old = signer.new_session("user-1", 60)
    before = times.offset()
    try:
        times.advance(61)
        assert signer.session(old) is None
    finally:
        times.restore(before)


def test_a_link_token_names_one_thing_for_a_while() -> None:
    signer = Signer(b"k")
    token = signer.link_token("u|m", 60)
    assert signer.check_link("u|m", token)
    assert not signer.check_link("u|other", token)
    assert not signer.check_link("u|m", None)
    assert not signer.check_link("u|m", "9999999999." + token.split(".")[1])
    assert not signer.check_link("u|m", "abc")
    before = times.offset()
    try:
        times.advance(61)
        assert not signer.check_link("u|m", token)
    finally:
        times.restore(before)


def test_download_names_have_no_path_quote_or_control_character() -> None:
    assert safe_filename("../../etc/passwd", "x") == "etc_passwd"
    assert safe_filename('a"b\r\nc;.html', "x") == "a_b_c_.html"
    assert safe_filename("...", "fallback") == "fallback"
    assert safe_filename(".hidden", "x") == "hidden"
    assert len(safe_filename("a" * 500, "x")) == 150
    header = disposition("résumé 2026.pdf").decode("latin-1")
    assert header.startswith('attachment; filename="r_sum_ 2026.pdf"')
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%202026.pdf" in header


def test_download_names_lose_bidi_overrides_invisible_and_c1_characters() -> None:
    # U+202E turns "invoice\u202egpj.exe" into "invoiceexe.jpg" on screen: the saved name
    # must show what it is
    assert safe_filename("invoice\u202egpj.exe", "x") == "invoice_gpj.exe"
    assert safe_filename("a\u200bb\u2028c\u0085d\ufeffe", "x") == "a_b_c_d_e"
    assert safe_filename("a\u2066b\u2069.txt", "x") == "a_b_.txt"
    # a lone surrogate (a name decoded with surrogateescape) cannot be UTF-8: no 500
    name = safe_filename("a\udcffb.pdf", "x")
    assert name == "a_b.pdf"
    assert disposition(name).startswith(b'attachment; filename="a_b.pdf"')


def test_a_store_that_is_away_is_503_with_no_database_text() -> None:
    assert _status(StoreError("database unavailable: connection refused")) == (
        503,
        "ServiceUnavailable",
    )
    assert _status(AlreadyExistsError("x"))[0] == 409
    assert _status(NotFoundError("x")) == (404, "NotFound")
