"""The operator's queue operations through `graphpost queue`, against a running server on
each engine whose relay (a real SMTP sink) answers 451: a deferred delivery retried now
arrives; a deleted one never does, and bounces to nobody."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningServer, drop_pg_database, make_pg_database, start_server
from tests.mail_api import ADELE, inbox_items, send_mail, sent_id_of, status_of, unique
from tests.sink import Sink, wait_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def relay_451(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, Sink]]:
    """A server whose deferred deliveries are not retried for an hour on their own. On
    PostgreSQL in a database of its own: the session's server (its worker and its relay)
    must not claim this one's deliveries."""
    url, name, admin = None, None, None
    if request.param == "postgresql":
        admin = request.getfixturevalue("pg_admin_url")
        name, url = make_pg_database(admin)
    sink = Sink().start()
    server = start_server(
        tmp_path_factory.mktemp(f"queue-{request.param}"), url, relay=sink.url,
        GRAPHPOST_RETRY_BASE_SECONDS="3600", GRAPHPOST_RETRY_MAX_SECONDS="3600",
        GRAPHPOST_RETRY_WINDOW_SECONDS="86400",
    )  # fmt: skip
    yield server, sink
    server.stop()
    sink.stop()
    if admin is not None and name is not None:
        drop_pg_database(admin, name)


def deferred_send(server: RunningServer, sink: Sink, to: str) -> tuple[str, str, int]:
    """Send to ``to``, which the relay answers 451 once: the subject, the sent item's id
    and the delivery's number as `graphpost queue list --state deferred` shows it."""
    subject = unique("greylisted")
    sink.answer(to, "451 4.7.1 greylisted, come back later")
    sent_id = sent_id_of(send_mail(server, subject, to))
    wait_for(lambda: status_of(server, sent_id)["recipients"][0]["status"] == "deferred")
    lines = server.cli("queue", "list", "--state", "deferred").splitlines()
    (line,) = [ln for ln in lines if subject in ln]
    seq, state, sender, recipient, *_ = line.split("\t")
    assert (state, sender.lower(), recipient) == ("deferred", ADELE.lower(), to)
    assert "451 4.7.1 greylisted" in line
    return subject, sent_id, int(seq)


def test_a_deferred_delivery_retried_now_arrives(relay_451: tuple[RunningServer, Sink]) -> None:
    server, sink = relay_451
    to = f"{unique('later')}@example.net"
    subject, sent_id, seq = deferred_send(server, sink, to)
    shown = server.cli("queue", "show", str(seq))
    assert "deferred" in shown and "greylisted" in shown
    out = server.cli("queue", "retry", str(seq))
    assert str(seq) in out
    wait_for(lambda: sink.with_subject(subject), what="the retried message")
    wait_for(lambda: status_of(server, sent_id)["status"] == "delivered")
    assert len(sink.messages_for(to)) == 1
    # retrying what was delivered is an error, and changes nothing
    with pytest.raises(AssertionError, match="nothing to retry"):
        server.cli("queue", "retry", str(seq))


def test_a_deleted_delivery_never_arrives_and_bounces_to_nobody(
    relay_451: tuple[RunningServer, Sink],
) -> None:
    server, sink = relay_451
    doomed = f"{unique('doomed')}@example.net"
    subject, sent_id, seq = deferred_send(server, sink, doomed)
    server.cli("queue", "delete", str(seq))
    (rcpt,) = status_of(server, sent_id)["recipients"]
    assert (
        rcpt["status"] == "failed" and "deleted from the queue by an operator" in (rcpt["response"])
    )
    # a later delivery, retried now, arrives: the worker has run since; the deleted never
    to = f"{unique('after')}@example.net"
    later, _, later_seq = deferred_send(server, sink, to)
    server.cli("queue", "retry", str(later_seq))
    wait_for(lambda: sink.with_subject(later), what="the message retried after the delete")
    assert sink.messages_for(doomed) == []
    with pytest.raises(AssertionError, match="only a queued or deferred delivery"):
        server.cli("queue", "delete", str(seq))
    with pytest.raises(AssertionError, match="nothing to retry"):
        server.cli("queue", "retry", str(seq))
    with pytest.raises(AssertionError, match="no delivery 999999"):
        server.cli("queue", "delete", "999999")
    assert inbox_items(server, ADELE, f"Undeliverable: {subject}") == []
    listed = server.cli("queue", "list", "--state", "failed")
    assert any(subject in ln and ln.startswith(f"{seq}\tfailed") for ln in listed.splitlines())
