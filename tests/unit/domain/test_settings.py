"""The pure rules of mailbox settings and arrival: PATCH merging and checks, time zones
(Windows and IANA), the automatic-reply window, who is never answered, Focused Inbox's
default."""

from __future__ import annotations

import msgspec
import pytest

from graphpost.domain import arrival, settings
from graphpost.domain.message import Header
from graphpost.domain.settings import MailboxSettingsInput
from graphpost.errors import InvalidTimeSettingsError, InvalidTimeZoneError, PropertyValueError


def _merge(document: dict, body: dict) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    return settings.merge(document, msgspec.convert(body, MailboxSettingsInput))


def test_merge_keeps_what_is_not_named() -> None:
    base = settings.defaults(1_700_000_000)
    base["automaticRepliesSetting"]["internalReplyMessage"] = "kept"
    out, named = _merge(base, {"automaticRepliesSetting": {"status": "AlwaysEnabled"}})
    assert named == ["automaticRepliesSetting"]
    assert out["automaticRepliesSetting"]["status"] == "alwaysEnabled"
    assert out["automaticRepliesSetting"]["internalReplyMessage"] == "kept"
    assert out["timeZone"] == base["timeZone"]


def test_zones() -> None:
    assert settings.zone("Pacific Standard Time").key == "America/Los_Angeles"
    assert settings.zone(" Europe/Berlin ").key == "Europe/Berlin"
    # every Windows zone name, not only the common ones: the schedule's extremes too
    assert settings.zone("Dateline Standard Time").key == "Etc/GMT+12"
    assert settings.zone("line islands standard time").key == "Pacific/Kiritimati"
    assert settings.zone("Sri Lanka Standard Time").key == "Asia/Colombo"
    for bad in ("", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "UTC\nX", "x" * 300):
        with pytest.raises(InvalidTimeZoneError):
            settings.zone(bad)


def test_schedule_in_its_time_zone() -> None:
    tokyo = {"dateTime": "2030-01-01T09:00:00", "timeZone": "Tokyo Standard Time"}
    utc = {"dateTime": "2030-01-01T10:00:00.0000000", "timeZone": "UTC"}
    out, _ = _merge(settings.defaults(0), {"automaticRepliesSetting": {
        "status": "scheduled", "scheduledStartDateTime": tokyo,
        "scheduledEndDateTime": utc}})  # fmt: skip
    plan = settings.reply_plan(out, 3)
    assert plan is not None and plan.epoch == 3
    start = 1893456000  # 2030-01-01T00:00:00Z, 09:00 in Tokyo
    assert plan.start == start and plan.end == start + 10 * 3600
    assert not plan.active(start - 1) and plan.active(start) and not plan.active(plan.end)
    with pytest.raises(InvalidTimeSettingsError):
        early = {"dateTime": "2029-01-01T00:00:00", "timeZone": "UTC"}
        _merge(out, {"automaticRepliesSetting": {"scheduledEndDateTime": early}})


def test_audiences() -> None:
    out, _ = _merge(settings.defaults(0), {"automaticRepliesSetting": {
        "status": "alwaysEnabled", "internalReplyMessage": "in", "externalReplyMessage": "out",
        "externalAudience": "contactsOnly"}})  # fmt: skip
    plan = settings.reply_plan(out, 1)
    assert plan is not None
    assert plan.message_for(internal=True) == "in"
    assert plan.message_for(internal=False) == ""  # no contacts here: as none
    out, _ = _merge(out, {"automaticRepliesSetting": {"externalAudience": "ALL"}})
    plan = settings.reply_plan(out, 1)
    assert plan is not None and plan.message_for(internal=False) == "out"
    out, _ = _merge(out, {"automaticRepliesSetting": {"status": "disabled"}})
    assert settings.reply_plan(out, 1) is None
    with pytest.raises(PropertyValueError):
        _merge(out, {"automaticRepliesSetting": {"externalAudience": "everyone"}})


@pytest.mark.parametrize(
    ("headers", "sender", "refused"),
    [
        ([], "a@example.net", False),
        ([], "", True),
        ([], None, True),
        ([], "MAILER-DAEMON@example.net", True),
        ([], "postmaster@example.net", True),
        ([("Auto-Submitted", "no")], "a@example.net", False),
        ([("Auto-Submitted", "auto-replied")], "a@example.net", True),
        ([("auto-submitted", "Auto-Generated; owner=x")], "a@example.net", True),
        ([("Precedence", "Bulk")], "a@example.net", True),
        ([("Precedence", "first-class")], "a@example.net", False),
        ([("List-Id", "<x.example.net>")], "a@example.net", True),
        ([("X-Auto-Response-Suppress", "DR, OOF")], "a@example.net", True),
        ([("X-Auto-Response-Suppress", "RN")], "a@example.net", False),
        ([("Content-Type", "multipart/report; report-type=delivery-status")], "a@x.net", True),
    ],
)
def test_who_is_never_answered(
    headers: list[tuple[str, str]], sender: str | None, refused: bool
) -> None:
    given = [Header(n, v) for n, v in headers]
    assert (arrival.reply_refused(given, sender) is not None) is refused
    if sender:
        assert arrival.classify(given, None) == (
            "other" if refused and headers and "Suppress" not in headers[0][0] else "focused"
        )
    assert arrival.classify(given, "focused") == "focused"


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ([("X-Spam-Flag", "YES")], True),
        ([("X-Spam-Flag", "no")], False),
        ([("X-Spam-Status", "Yes, score=9.1 required=5.0")], True),
        ([("X-Spam-Status", "No, score=0.1 required=5.0")], False),
        ([("Authentication-Results", "mx.example.org; spf=fail smtp.mailfrom=a@x.net")], True),
        ([("Authentication-Results", "mx.example.org; spf=softfail smtp.mailfrom=x.net")], True),
        (
            [("Authentication-Results", "mx.example.org;\r\n dmarc=FAIL (p=none) header.from=x")],
            True,
        ),
        ([("Authentication-Results", "mx.example.org; spf=pass; dkim=pass; dmarc=pass")], False),
        ([("Authentication-Results", "mx.example.org; spf=none; dmarc=bestguesspass")], False),
        ([("Authentication-Results", "mx.example.org; dkim=fail; dkim=pass; dmarc=pass")], False),
    ],
)
def test_mail_an_upstream_check_failed_is_never_answered(
    headers: list[tuple[str, str]], refused: bool
) -> None:
    # a forged sender is an innocent third party: answering it is backscatter
    given = [Header(n, v) for n, v in headers]
    assert (arrival.reply_refused(given, "a@example.net") is not None) is refused
