"""A mailbox's settings (Graph's ``mailboxSettings``), its master list of categories
(``outlookCategory``) and its Focused Inbox overrides (``inferenceClassificationOverride``):
the input types, their checks, the stored document, and the rules a delivery reads from them
(is an automatic reply due now, how is a sender's message classified).

The settings are kept as one JSON document in Graph's wire form: a PATCH merges into it (a
property not named keeps its value; inside ``automaticRepliesSetting``, ``language`` and
``workingHours`` too, as Graph's example shows), a GET renders it over the defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import UNSET, UnsetType

from graphpost.domain.addresses import problem, shown
from graphpost.domain.reader import GraphInput
from graphpost.domain.times import iso
from graphpost.errors import (
    InvalidArgumentsError,
    InvalidTimeSettingsError,
    InvalidTimeZoneError,
    PropertyValueError,
)

REPLY_STATUS = {"disabled": "disabled", "alwaysenabled": "alwaysEnabled", "scheduled": "scheduled"}
AUDIENCE = {"none": "none", "contactsonly": "contactsOnly", "all": "all"}
DELEGATE_OPTIONS = {
    o.lower(): o
    for o in (
        "sendToDelegateAndInformationToPrincipal",
        "sendToDelegateAndPrincipal",
        "sendToDelegateOnly",
    )
}
DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
COLORS = ("none", *(f"preset{i}" for i in range(25)))
CLASSIFY = ("focused", "other")
MAX_REPLY_MESSAGE = 128 * 1024  # characters of an internal or external reply message
MAX_SHORT = 256  # a date or time format, a locale, a display name, a time zone's name
MAX_CATEGORIES = 500
MAX_OVERRIDES = 1000  # Graph's documented limit per mailbox
NOT_FOUND_TZ = "Time Zone settings provided are invalid."
_LOCALE = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCAL_DT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?")

# Every Windows time zone name, with its IANA zone (CLDR's windowsZones mapping, territory
# 001); any IANA name the system knows is taken as it is.
WINDOWS_ZONES = {
    "utc": "UTC",
    "afghanistan standard time": "Asia/Kabul",
    "alaskan standard time": "America/Anchorage",
    "alberta standard time": "America/Edmonton",
    "aleutian standard time": "America/Adak",
    "altai standard time": "Asia/Barnaul",
    "arab standard time": "Asia/Riyadh",
    "arabian standard time": "Asia/Dubai",
    "arabic standard time": "Asia/Baghdad",
    "argentina standard time": "America/Buenos_Aires",
    "astrakhan standard time": "Europe/Astrakhan",
    "atlantic standard time": "America/Halifax",
    "aus central standard time": "Australia/Darwin",
    "aus central w. standard time": "Australia/Eucla",
    "aus eastern standard time": "Australia/Sydney",
    "azerbaijan standard time": "Asia/Baku",
    "azores standard time": "Atlantic/Azores",
    "bahia standard time": "America/Bahia",
    "bangladesh standard time": "Asia/Dhaka",
    "belarus standard time": "Europe/Minsk",
    "bougainville standard time": "Pacific/Bougainville",
    "british columbia standard time": "America/Vancouver",
    "canada central standard time": "America/Regina",
    "cape verde standard time": "Atlantic/Cape_Verde",
    "caucasus standard time": "Asia/Yerevan",
    "cen. australia standard time": "Australia/Adelaide",
    "central america standard time": "America/Guatemala",
    "central asia standard time": "Asia/Bishkek",
    "central brazilian standard time": "America/Cuiaba",
    "central europe standard time": "Europe/Budapest",
    "central european standard time": "Europe/Warsaw",
    "central pacific standard time": "Pacific/Guadalcanal",
    "central standard time": "America/Chicago",
    "central standard time (mexico)": "America/Mexico_City",
    "chatham islands standard time": "Pacific/Chatham",
    "china standard time": "Asia/Shanghai",
    "cuba standard time": "America/Havana",
    "dateline standard time": "Etc/GMT+12",
    "e. africa standard time": "Africa/Nairobi",
    "e. australia standard time": "Australia/Brisbane",
    "e. europe standard time": "Europe/Chisinau",
    "e. south america standard time": "America/Sao_Paulo",
    "easter island standard time": "Pacific/Easter",
    "eastern standard time": "America/New_York",
    "eastern standard time (mexico)": "America/Cancun",
    "egypt standard time": "Africa/Cairo",
    "ekaterinburg standard time": "Asia/Yekaterinburg",
    "fiji standard time": "Pacific/Fiji",
    "fle standard time": "Europe/Kiev",
    "georgian standard time": "Asia/Tbilisi",
    "gmt standard time": "Europe/London",
    "greenland standard time": "America/Godthab",
    "greenwich standard time": "Atlantic/Reykjavik",
    "gtb standard time": "Europe/Bucharest",
    "haiti standard time": "America/Port-au-Prince",
    "hawaiian standard time": "Pacific/Honolulu",
    "india standard time": "Asia/Calcutta",
    "iran standard time": "Asia/Tehran",
    "israel standard time": "Asia/Jerusalem",
    "jordan standard time": "Asia/Amman",
    "kaliningrad standard time": "Europe/Kaliningrad",
    "korea standard time": "Asia/Seoul",
    "libya standard time": "Africa/Tripoli",
    "line islands standard time": "Pacific/Kiritimati",
    "lord howe standard time": "Australia/Lord_Howe",
    "magadan standard time": "Asia/Magadan",
    "magallanes standard time": "America/Punta_Arenas",
    "manitoba standard time": "America/Winnipeg",
    "marquesas standard time": "Pacific/Marquesas",
    "mauritius standard time": "Indian/Mauritius",
    "middle east standard time": "Asia/Beirut",
    "montevideo standard time": "America/Montevideo",
    "morocco standard time": "Africa/Casablanca",
    "mountain standard time": "America/Denver",
    "mountain standard time (mexico)": "America/Mazatlan",
    "myanmar standard time": "Asia/Rangoon",
    "n. central asia standard time": "Asia/Novosibirsk",
    "namibia standard time": "Africa/Windhoek",
    "nepal standard time": "Asia/Katmandu",
    "new zealand standard time": "Pacific/Auckland",
    "newfoundland standard time": "America/St_Johns",
    "norfolk standard time": "Pacific/Norfolk",
    "north asia east standard time": "Asia/Irkutsk",
    "north asia standard time": "Asia/Krasnoyarsk",
    "north korea standard time": "Asia/Pyongyang",
    "omsk standard time": "Asia/Omsk",
    "pacific sa standard time": "America/Santiago",
    "pacific standard time": "America/Los_Angeles",
    "pacific standard time (mexico)": "America/Tijuana",
    "pakistan standard time": "Asia/Karachi",
    "paraguay standard time": "America/Asuncion",
    "qyzylorda standard time": "Asia/Qyzylorda",
    "romance standard time": "Europe/Paris",
    "russia time zone 10": "Asia/Srednekolymsk",
    "russia time zone 11": "Asia/Kamchatka",
    "russia time zone 3": "Europe/Samara",
    "russian standard time": "Europe/Moscow",
    "sa eastern standard time": "America/Cayenne",
    "sa pacific standard time": "America/Bogota",
    "sa western standard time": "America/La_Paz",
    "saint pierre standard time": "America/Miquelon",
    "sakhalin standard time": "Asia/Sakhalin",
    "samoa standard time": "Pacific/Apia",
    "sao tome standard time": "Africa/Sao_Tome",
    "saratov standard time": "Europe/Saratov",
    "se asia standard time": "Asia/Bangkok",
    "singapore standard time": "Asia/Singapore",
    "south africa standard time": "Africa/Johannesburg",
    "south sudan standard time": "Africa/Juba",
    "sri lanka standard time": "Asia/Colombo",
    "sudan standard time": "Africa/Khartoum",
    "syria standard time": "Asia/Damascus",
    "taipei standard time": "Asia/Taipei",
    "tasmania standard time": "Australia/Hobart",
    "tocantins standard time": "America/Araguaina",
    "tokyo standard time": "Asia/Tokyo",
    "tomsk standard time": "Asia/Tomsk",
    "tonga standard time": "Pacific/Tongatapu",
    "transbaikal standard time": "Asia/Chita",
    "turkey standard time": "Europe/Istanbul",
    "turks and caicos standard time": "America/Grand_Turk",
    "ulaanbaatar standard time": "Asia/Ulaanbaatar",
    "us eastern standard time": "America/Indianapolis",
    "us mountain standard time": "America/Phoenix",
    "utc+12": "Etc/GMT-12",
    "utc+13": "Etc/GMT-13",
    "utc-02": "Etc/GMT+2",
    "utc-08": "Etc/GMT+8",
    "utc-09": "Etc/GMT+9",
    "utc-11": "Etc/GMT+11",
    "venezuela standard time": "America/Caracas",
    "vladivostok standard time": "Asia/Vladivostok",
    "volgograd standard time": "Europe/Volgograd",
    "w. australia standard time": "Australia/Perth",
    "w. central africa standard time": "Africa/Lagos",
    "w. europe standard time": "Europe/Berlin",
    "w. mongolia standard time": "Asia/Hovd",
    "west asia standard time": "Asia/Tashkent",
    "west bank standard time": "Asia/Hebron",
    "west pacific standard time": "Pacific/Port_Moresby",
    "yakutsk standard time": "Asia/Yakutsk",
    "yukon standard time": "America/Whitehorse",
}
LOCALE_NAMES = {
    "en-us": "English (United States)", "en-gb": "English (United Kingdom)",
    "de-de": "German (Germany)", "fr-fr": "French (France)", "es-es": "Spanish (Spain)",
    "it-it": "Italian (Italy)", "nl-nl": "Dutch (Netherlands)", "ja-jp": "Japanese (Japan)",
    "pt-br": "Portuguese (Brazil)", "zh-cn": "Chinese (Simplified, China)",
}  # fmt: skip


# ------------------------------------------------------------------ input (the strict reader)


class DateTimeTimeZoneInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.dateTimeTimeZone"
    date_time: str | UnsetType = UNSET
    time_zone: str | UnsetType | None = UNSET


class AutomaticRepliesInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.automaticRepliesSetting"
    status: str | UnsetType = UNSET
    external_audience: str | UnsetType = UNSET
    scheduled_start_date_time: DateTimeTimeZoneInput | UnsetType = UNSET
    scheduled_end_date_time: DateTimeTimeZoneInput | UnsetType = UNSET
    internal_reply_message: str | UnsetType | None = UNSET
    external_reply_message: str | UnsetType | None = UNSET


class LocaleInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.localeInfo"
    locale: str | UnsetType = UNSET
    display_name: str | UnsetType | None = UNSET


class ZoneOffsetInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.standardTimeZoneOffset"
    time: str | UnsetType = UNSET
    day_occurrence: int | UnsetType = UNSET
    day_of_week: str | UnsetType = UNSET
    month: int | UnsetType = UNSET
    year: int | UnsetType = UNSET
    daylight_bias: int | UnsetType = UNSET


class TimeZoneInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.timeZoneBase"
    name: str | UnsetType = UNSET
    bias: int | UnsetType = UNSET  # customTimeZone
    standard_offset: ZoneOffsetInput | UnsetType = UNSET
    daylight_offset: ZoneOffsetInput | UnsetType = UNSET


class WorkingHoursInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.workingHours"
    days_of_week: list[str] | UnsetType = UNSET
    start_time: str | UnsetType = UNSET
    end_time: str | UnsetType = UNSET
    time_zone: TimeZoneInput | UnsetType = UNSET


class MailboxSettingsInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.mailboxSettings"
    automatic_replies_setting: AutomaticRepliesInput | UnsetType = UNSET
    date_format: str | UnsetType = UNSET
    time_format: str | UnsetType = UNSET
    time_zone: str | UnsetType = UNSET
    language: LocaleInput | UnsetType = UNSET
    working_hours: WorkingHoursInput | UnsetType = UNSET
    delegate_meeting_message_delivery_options: str | UnsetType = UNSET
    # read-only: accepted (an SDK echoes what it read) and ignored, as Graph ignores them
    archive_folder: Any = UNSET
    user_purpose: Any = UNSET


class CategoryInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.outlookCategory"
    id: Any = UNSET
    display_name: str | UnsetType = UNSET
    color: str | UnsetType = UNSET


class EmailAddressInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.emailAddress"
    name: str | UnsetType | None = UNSET
    address: str | UnsetType | None = UNSET


class OverrideInput(GraphInput, kw_only=True):
    graph_type = "microsoft.graph.inferenceClassificationOverride"
    id: Any = UNSET
    classify_as: str | UnsetType = UNSET
    sender_email_address: EmailAddressInput | UnsetType = UNSET


# ------------------------------------------------------------------ stored values


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    display_name: str
    color: str

    def render(self) -> dict[str, Any]:
        return {"id": self.id, "displayName": self.display_name, "color": self.color}


@dataclass(frozen=True, slots=True)
class Override:
    id: str
    address: str  # lower case: the key
    name: str | None
    classify_as: str

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "classifyAs": self.classify_as,
            "senderEmailAddress": {"name": self.name, "address": self.address},
        }


# ------------------------------------------------------------------ checks


def _enum(value: str, allowed: dict[str, str], prop: str) -> str:
    found = allowed.get(value.lower()) if isinstance(value, str) else None
    if found is None:
        raise PropertyValueError(
            f"Requested value '{shown(str(value), 100)}' was not found for '{prop}'; expected "
            f"one of: {', '.join(allowed.values())}.",
            target=prop,
        )
    return found


def _short(value: str, prop: str) -> str:
    if len(value) > MAX_SHORT or _CONTROL.search(value):
        raise PropertyValueError(
            f"'{prop}' must be at most {MAX_SHORT} characters without control characters.",
            target=prop,
        )
    return value


def zone(name: str) -> ZoneInfo:
    """The zone of a Windows or IANA time zone name; InvalidTimeZoneError otherwise."""
    text = name.strip()
    if not text or len(text) > MAX_SHORT or _CONTROL.search(text) or ".." in text:
        raise InvalidTimeZoneError(NOT_FOUND_TZ, target="timeZone")
    key = WINDOWS_ZONES.get(text.lower(), text)
    if key.startswith("/") or "\\" in key:
        raise InvalidTimeZoneError(NOT_FOUND_TZ, target="timeZone")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimeZoneError(NOT_FOUND_TZ, target="timeZone") from None


def _time_of_day(value: str, prop: str) -> str:
    m = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3) or 0) > 59:
        raise PropertyValueError(
            f"Cannot convert the literal '{shown(str(value), 40)}' to the expected type "
            "'Edm.TimeOfDay'.",
            target=prop,
        )
    frac = (m.group(4) or "").ljust(7, "0")
    return f"{m.group(1)}:{m.group(2)}:{m.group(3) or '00'}.{frac}"


def _date_time_zone(
    given: DateTimeTimeZoneInput, prior: dict[str, Any], prop: str
) -> dict[str, Any]:
    text = given.date_time if isinstance(given.date_time, str) else prior.get("dateTime", "")
    tz = given.time_zone if isinstance(given.time_zone, str) else prior.get("timeZone") or "UTC"
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1]
    if not _LOCAL_DT.fullmatch(value):
        raise PropertyValueError(
            f"'{prop}.dateTime' must be a date and time such as 2016-03-20T18:00:00.0000000.",
            target=f"{prop}.dateTime",
        )
    try:
        parsed = datetime.fromisoformat(value[:26] if "." in value else value)
    except ValueError:
        raise PropertyValueError(
            f"'{prop}.dateTime' is not a valid date and time.", target=f"{prop}.dateTime"
        ) from None
    zone(tz)
    return {"dateTime": parsed.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tz.strip()}


def instant(value: dict[str, Any]) -> int:
    """A stored dateTimeTimeZone as epoch seconds."""
    local = datetime.fromisoformat(str(value["dateTime"])[:19])
    return int(local.replace(tzinfo=zone(str(value.get("timeZone") or "UTC"))).timestamp())


def defaults(stamp: int) -> dict[str, Any]:
    """What a mailbox whose settings were never changed answers."""
    start = stamp - stamp % 3600
    return {
        "archiveFolder": None,
        "timeZone": "UTC",
        "automaticRepliesSetting": {
            "status": "disabled",
            "externalAudience": "all",
            "scheduledStartDateTime": {"dateTime": _local(start), "timeZone": "UTC"},
            "scheduledEndDateTime": {"dateTime": _local(start + 86400), "timeZone": "UTC"},
            "internalReplyMessage": "",
            "externalReplyMessage": "",
        },
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"},
        },
        "userPurpose": {"value": "user"},
        "dateFormat": "M/d/yyyy",
        "timeFormat": "h:mm tt",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
    }


def _local(stamp: int) -> str:
    return iso(stamp)[:-1] + ".0000000"


def _zone_offset(given: ZoneOffsetInput, prop: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(given.time, str):
        out["time"] = _time_of_day(given.time, f"{prop}.time")
    for name, value in (
        ("dayOccurrence", given.day_occurrence),
        ("month", given.month),
        ("year", given.year),
        ("daylightBias", given.daylight_bias),
    ):
        if isinstance(value, int):
            if abs(value) > 100_000:
                raise PropertyValueError(f"'{prop}.{name}' is out of range.", target=prop)
            out[name] = value
    if isinstance(given.day_of_week, str):
        out["dayOfWeek"] = _enum(given.day_of_week, {d: d for d in DAYS}, f"{prop}.dayOfWeek")
    return out


def _working_hours(given: WorkingHoursInput, prior: dict[str, Any]) -> dict[str, Any]:
    out = dict(prior)
    if isinstance(given.days_of_week, list):
        days = []
        for day in given.days_of_week:
            lowered = day.lower() if isinstance(day, str) else ""
            if lowered not in DAYS:
                raise InvalidArgumentsError(
                    f"Requested value '{shown(str(day), 40)}' was not found.",
                    target="workingHours.daysOfWeek",
                )
            if lowered not in days:
                days.append(lowered)
        out["daysOfWeek"] = days
    if isinstance(given.start_time, str):
        out["startTime"] = _time_of_day(given.start_time, "workingHours.startTime")
    if isinstance(given.end_time, str):
        out["endTime"] = _time_of_day(given.end_time, "workingHours.endTime")
    if out["startTime"] >= out["endTime"]:
        raise InvalidTimeSettingsError("Start Time should occur before End Time.")
    if isinstance(given.time_zone, TimeZoneInput):
        tz = given.time_zone
        custom = "customtimezone" in (tz.odata_type or "").lower() if tz.odata_type else False
        name = tz.name if isinstance(tz.name, str) else ""
        if custom:
            found: dict[str, Any] = {"@odata.type": "#microsoft.graph.customTimeZone"}
            if isinstance(tz.bias, int):
                if abs(tz.bias) > 24 * 60:
                    raise InvalidTimeZoneError(NOT_FOUND_TZ, target="workingHours.timeZone")
                found["bias"] = tz.bias
            found["name"] = _short(name, "workingHours.timeZone.name")
            for key, part in (("standardOffset", tz.standard_offset),
                              ("daylightOffset", tz.daylight_offset)):  # fmt: skip
                if isinstance(part, ZoneOffsetInput):
                    found[key] = _zone_offset(part, f"workingHours.timeZone.{key}")
            out["timeZone"] = found
        else:
            zone(name)
            out["timeZone"] = {"name": name.strip()}
    return out


def _automatic_replies(given: AutomaticRepliesInput, prior: dict[str, Any]) -> dict[str, Any]:
    out = dict(prior)
    if isinstance(given.status, str):
        out["status"] = _enum(given.status, REPLY_STATUS, "automaticRepliesSetting.status")
    if isinstance(given.external_audience, str):
        out["externalAudience"] = _enum(
            given.external_audience, AUDIENCE, "automaticRepliesSetting.externalAudience"
        )
    for key, value in (
        ("scheduledStartDateTime", given.scheduled_start_date_time),
        ("scheduledEndDateTime", given.scheduled_end_date_time),
    ):
        if isinstance(value, DateTimeTimeZoneInput):
            out[key] = _date_time_zone(value, prior.get(key) or {}, key)
    for key, text in (
        ("internalReplyMessage", given.internal_reply_message),
        ("externalReplyMessage", given.external_reply_message),
    ):
        if text is UNSET:
            continue
        text = text or ""
        if len(text) > MAX_REPLY_MESSAGE or "\x00" in text:
            raise PropertyValueError(
                f"'{key}' takes at most {MAX_REPLY_MESSAGE} characters.", target=key
            )
        out[key] = text
    if out["status"] == "scheduled" and instant(out["scheduledEndDateTime"]) <= instant(
        out["scheduledStartDateTime"]
    ):
        raise InvalidTimeSettingsError(
            "The scheduled end time of automatic replies must be after their start time."
        )
    return out


def merge(
    document: dict[str, Any], given: MailboxSettingsInput
) -> tuple[dict[str, Any], list[str]]:
    """``document`` (the whole settings, defaults filled in) with ``given`` applied, and the
    properties the request named (what a PATCH answers with)."""
    out = dict(document)
    named: list[str] = []
    if isinstance(given.automatic_replies_setting, AutomaticRepliesInput):
        out["automaticRepliesSetting"] = _automatic_replies(
            given.automatic_replies_setting, document["automaticRepliesSetting"]
        )
        named.append("automaticRepliesSetting")
    for key, value in (("dateFormat", given.date_format), ("timeFormat", given.time_format)):
        if isinstance(value, str):
            out[key] = _short(value, key)
            named.append(key)
    if isinstance(given.time_zone, str):
        zone(given.time_zone)
        out["timeZone"] = given.time_zone.strip()
        named.append("timeZone")
    if isinstance(given.language, LocaleInput):
        lang = dict(document["language"])
        if isinstance(given.language.locale, str):
            locale = given.language.locale.strip()
            if not _LOCALE.fullmatch(locale) or len(locale) > 35:
                raise PropertyValueError(
                    f"'{shown(locale, 40)}' is not a locale such as en-US.",
                    target="language.locale",
                )
            lang["locale"] = locale
            lang["displayName"] = LOCALE_NAMES.get(locale.lower(), locale)
        if isinstance(given.language.display_name, str):
            lang["displayName"] = _short(given.language.display_name, "language.displayName")
        out["language"] = lang
        named.append("language")
    if isinstance(given.working_hours, WorkingHoursInput):
        out["workingHours"] = _working_hours(given.working_hours, document["workingHours"])
        named.append("workingHours")
    if isinstance(given.delegate_meeting_message_delivery_options, str):
        out["delegateMeetingMessageDeliveryOptions"] = _enum(
            given.delegate_meeting_message_delivery_options,
            DELEGATE_OPTIONS,
            "delegateMeetingMessageDeliveryOptions",
        )
        named.append("delegateMeetingMessageDeliveryOptions")
    return out, named


def category(given: CategoryInput) -> tuple[str, str]:
    """A new category's display name and colour (``none`` when not given)."""
    if not isinstance(given.display_name, str) or not given.display_name.strip():
        raise PropertyValueError("A category needs a displayName.", target="displayName")
    name = _short(given.display_name.strip(), "displayName")
    if "," in name or ";" in name:
        raise PropertyValueError(
            "A category's displayName cannot contain ',' or ';'.", target="displayName"
        )
    color = given.color if isinstance(given.color, str) else "none"
    return name, _enum(color, {c.lower(): c for c in COLORS}, "color")


def color_of(given: CategoryInput, current: Category) -> str:
    """PATCH of a category: only its colour changes (its name is the key messages use)."""
    if isinstance(given.display_name, str) and given.display_name != current.display_name:
        raise PropertyValueError(
            "A category's displayName cannot be changed; create a new category instead.",
            target="displayName",
        )
    if not isinstance(given.color, str):
        return current.color
    return _enum(given.color, {c.lower(): c for c in COLORS}, "color")


def override(given: OverrideInput) -> tuple[str, str | None, str]:
    """A new override's sender address (lower case), display name and classification."""
    sender = given.sender_email_address
    address = sender.address if isinstance(sender, EmailAddressInput) else None
    if not isinstance(address, str) or problem(address.strip()) is not None:
        raise PropertyValueError(
            "An override needs senderEmailAddress.address, an SMTP address.",
            target="senderEmailAddress.address",
        )
    name = sender.name if isinstance(sender, EmailAddressInput) else None
    name = _short(name, "senderEmailAddress.name") if isinstance(name, str) else None
    return address.strip().lower(), name, classification(given, None)


def classification(given: OverrideInput, current: str | None) -> str:
    if not isinstance(given.classify_as, str):
        if current is None:
            raise PropertyValueError("An override needs classifyAs.", target="classifyAs")
        return current
    return _enum(given.classify_as, {c: c for c in CLASSIFY}, "classifyAs")


# ------------------------------------------------------------------ what a delivery reads


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """Automatic replies as a delivery reads them."""

    status: str
    audience: str
    start: int
    end: int
    internal: str
    external: str
    epoch: int  # bumped by every change of automaticRepliesSetting: a new reply period

    def active(self, stamp: int) -> bool:
        if self.status == "alwaysEnabled":
            return True
        return self.status == "scheduled" and self.start <= stamp < self.end

    def message_for(self, *, internal: bool) -> str:
        """The reply for a sender inside the organisation or outside it ('' for none).
        ``contactsOnly`` answers no outside sender: graphpost keeps no contacts."""
        if internal:
            return self.internal
        return self.external if self.audience == "all" else ""


def reply_plan(document: dict[str, Any] | None, epoch: int) -> ReplyPlan | None:
    if document is None:
        return None
    s = document.get("automaticRepliesSetting") or {}
    if s.get("status") not in ("alwaysEnabled", "scheduled"):
        return None
    return ReplyPlan(
        status=s["status"],
        audience=s.get("externalAudience", "all"),
        start=instant(s["scheduledStartDateTime"]),
        end=instant(s["scheduledEndDateTime"]),
        internal=s.get("internalReplyMessage") or "",
        external=s.get("externalReplyMessage") or "",
        epoch=epoch,
    )


def encode(document: dict[str, Any]) -> bytes:
    return msgspec.json.encode(document)


def decode(raw: bytes) -> dict[str, Any]:
    value = msgspec.json.decode(raw)
    return value if isinstance(value, dict) else {}


def utc(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)
