"""A large message's streamed DATA (``transport.stream_data``) against a real aiosmtpd sink:
dot-stuffing across chunk boundaries, and the message arriving byte for byte."""

from __future__ import annotations

import re

import aiosmtplib
import pytest

from graphpost.delivery.transport import stream_data
from tests.sink import Sink

pytestmark = pytest.mark.anyio


async def chunks(parts: list[bytes]):  # type: ignore[no-untyped-def]
    for p in parts:
        yield p


@pytest.mark.parametrize(
    "parts",
    [
        [b"Subject: s\r\n\r\nline\r\n", b".dot\r\n", b"a\r", b"\n.b\r\n", b"..two\r\nend\r\n"],
        [b"Subject: s\r\n\r\n.", b"first\r\n.", b"\r\n", b"last"],  # no final CRLF
        [b"Subject: s\r\n\r\n", b"", b"x" * 76 + b"\r\n" * 2000 + b".\r\n.." + b"y" * 10 + b"\r\n"],
    ],
)
async def test_dots_at_line_starts_survive_any_split(parts: list[bytes]) -> None:
    sink = Sink().start()
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
        await client.connect()
        await client.mail("a@example.com")
        await client.rcpt("b@example.net")
        answer = await stream_data(client, chunks(parts), 10)
        assert answer.code == 250
        await client.quit()
        [got] = sink.messages_for("b@example.net")
        whole = b"".join(parts)
        assert got.data == (whole if whole.endswith(b"\r\n") else whole + b"\r\n")
    finally:
        sink.stop()


async def test_a_refused_data_is_an_error() -> None:
    sink = Sink().start()
    sink.answer("b@example.net", "250 2.1.5 OK")
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
        await client.connect()
        await client.mail("a@example.com")
        with pytest.raises(aiosmtplib.SMTPDataError):  # no recipient: 503 on DATA
            await stream_data(client, chunks([b"x\r\n"]), 10)
        client.close()
    finally:
        sink.stop()


@pytest.mark.parametrize(
    "parts",
    [
        # SMTP smuggling's end-of-data variants, as an attached message/rfc822 file may hold
        [b"Subject: s\r\n\r\nhi\r.\r\nMAIL FROM:<x@y>\r\n", b"a\n.\nb\n.\r\nc\r\n.\nd"],
        [b"Subject: s\r\n\r\nx\r", b".", b"\r", b"", b"\n.", b"\n", b"\r"],  # split anywhere
    ],
)
async def test_bare_line_ends_go_out_as_crlf(parts: list[bytes]) -> None:
    """A bare CR or LF never reaches the relay (a lenient relay could read ``<CR>.<CR><LF>``
    or ``<LF>.<LF>`` as the end of DATA and the rest as commands): every line end is CRLF,
    as aiosmtplib's own ``data`` sends a whole message."""
    sink = Sink().start()
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
        await client.connect()
        await client.mail("a@example.com")
        await client.rcpt("b@example.net")
        assert (await stream_data(client, chunks(parts), 10)).code == 250
        await client.quit()
        [got] = sink.messages_for("b@example.net")
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", got.data) is None, got.data
        whole = re.sub(rb"\r\n|\n|\r", b"\r\n", b"".join(parts))
        assert got.data == (whole if whole.endswith(b"\r\n") else whole + b"\r\n")
    finally:
        sink.stop()
