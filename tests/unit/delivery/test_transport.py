from __future__ import annotations

import pytest

from graphpost.delivery.transport import RelayConfig, refusal, reply


def test_reply_classification() -> None:
    r = reply(550, "5.1.1 <x@y>: user unknown")
    assert (r.code, r.enhanced, r.text, r.kind) == (550, "5.1.1", "<x@y>: user unknown", "failed")
    assert reply(451, "4.7.1 later").kind == "deferred"
    assert reply(None, "refused").kind == "deferred"
    assert reply(250, "2.0.0 OK").kind == "delivered"
    assert reply(250, "OK").enhanced is None


def test_relay_urls() -> None:
    c = RelayConfig.parse("smtp://us%40er:p%3Ass@relay.example.com:587?starttls=require")
    assert (c.host, c.port, c.username, c.password) == ("relay.example.com", 587, "us@er", "p:ss")
    assert c.starttls == "require" and not c.implicit_tls
    s = RelayConfig.parse("smtps://relay.example.com?verify=false")
    assert s.implicit_tls and s.port == 465 and not s.verify and s.starttls == "off"
    with pytest.raises(ValueError):
        RelayConfig.parse("http://relay")


def test_refusal_of_addresses_no_relay_can_take() -> None:
    bad_ones = [
        "", "nobody", "a b@example.com", "a\x00b@example.com", "a\x7f@example.com",
        "a\x08@example.com", "<a>@example.com", "a@exa mple.com", '"a\x01"@example.com',
    ]  # fmt: skip
    for bad in bad_ones:
        found = refusal(bad, smtputf8=True)
        assert found is not None and found.kind == "failed" and found.enhanced == "5.1.3", bad
    for good in ["a@example.com", '"john doe"@example.com', "o'brien+tag@example.com"]:
        assert refusal(good, smtputf8=False) is None, good
    utf8 = refusal("bøb@example.com", smtputf8=False)
    assert utf8 is not None and utf8.kind == "failed" and utf8.enhanced == "5.6.7"
    assert "SMTPUTF8" in utf8.text
    assert refusal("bøb@example.com", smtputf8=True) is None
