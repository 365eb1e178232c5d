from __future__ import annotations

import pytest

from graphpost.delivery.transport import RelayConfig, reply


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
