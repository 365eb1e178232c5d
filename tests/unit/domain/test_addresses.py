"""The one address check: RFC 5321 syntax, SMTPUTF8 letters, no controls or invisible text."""

from __future__ import annotations

import pytest

from graphpost.domain import addresses


@pytest.mark.parametrize(
    "address",
    [
        "ok@example.com", "first.last@sub.example.co.uk", "a+tag@example.com",
        "!#$%&'*+-/=?^_`{|}~@example.com", '"quoted..local"@example.com', '"a\\"b"@example.com',
        "user@[192.0.2.1]", "user@[IPv6:2001:db8::1]", "user@localhost",
        "bøb@example.com", "用户@例子.广告", "x@xn--bcher-kva.example",
        "a" * 64 + "@example.com", "a@" + ".".join(["b" * 63] * 3) + ".example",
    ],
)  # fmt: skip
def test_valid_addresses(address: str) -> None:
    assert addresses.problem(address) is None, addresses.problem(address)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("", "empty"), ("no-at-sign", "local-part@domain"), ("@example.com", "local-part@domain"),
        ("a@", "local-part@domain"), ("a b@example.com", "space"),
        ("a\x00b@example.com", "control"),
        ("a\x7fb@example.com", "control"), ("a\x08b@example.com", "control"),
        ("a\r\nRCPT TO:<x@y>@example.com", "control"), ("a\u2028b@example.com", "invisible"),
        ("a\u200bb@example.com", "invisible"), ("a\u00a0b@example.com", "invisible"),
        ("a\ud800b@example.com", "invisible"), ("<a@example.com>", "'<' or '>'"),
        ("a..b@example.com", "local part"), (".a@example.com", "local part"),
        ("a.@example.com", "local part"), ("a(b)@example.com", "local part"),
        ('"a b"@example.com', "space"), ("a@-example.com", "domain"),
        ("a@example-.com", "domain"), ("a@exa_mple.com", "domain"), ("a@example..com", "domain"),
        ("a@[300.1.1.1]", "domain"), ("a@[IPv6:zz]", "domain"), ("a@[1.2.3.4", "domain"),
        ("a" * 65 + "@example.com", "64"), ("ø" * 33 + "@example.com", "64"),
        ("a@" + "b" * 64 + ".example", "domain"), ("a@" + ".".join(["b" * 60] * 5), "254"),
    ],
)  # fmt: skip
def test_invalid_addresses(address: str, why: str) -> None:
    found = addresses.problem(address)
    assert found is not None and why in found, found
    assert not addresses.is_valid(address)


def test_shown_escapes_controls_and_shortens() -> None:
    assert addresses.shown("a\x00b\r\n\u2028ø") == "a\\x00b\\x0d\\x0a\\u2028ø"
    assert addresses.shown("x" * 400).endswith("…")
    assert len(addresses.shown("x" * 400)) == 321


def test_smtputf8_needed_only_for_non_ascii() -> None:
    assert addresses.needs_smtputf8("bøb@example.com")
    assert not addresses.needs_smtputf8("bob@example.com")
