"""Replay the Graph docs' examples of open extensions and extended properties against the real
server (``data/extension-doc-examples.json``).

Sample ids are the docs' own and are mapped onto messages the test creates. Where Exchange's
answer in a 2015-era example differs from what this server keeps, the difference is named
below and the rest of the answer is compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer

DATA = json.loads((Path(__file__).parent / "data" / "extension-doc-examples.json").read_text())
EXAMPLES = {e["name"]: e for e in DATA["examples"]}
SAMPLE_MESSAGE = "AAMkAGE1M2IyNGNmLTI5MTktNDUyZi1iOTVl==="
# Differences from the examples' answers, and why.
QUIRKS = {
    # the 2015-era examples spell the id with Microsoft.OutlookServices'; ours is the current
    # microsoft.graph.openTypeExtension.{name} (both are accepted as references)
    "id",
    # Exchange turned the string "500100" into a number and normalised the date's fraction;
    # an open extension here keeps the JSON it was given
    "dealValue", "expirationDate",
    "@odata.context", "@odata.id",
}  # fmt: skip


def status_of(example: dict[str, Any]) -> int:
    return int(example.get("documented_status") or example["expected_status"] or 200)


def body_of(example: dict[str, Any]) -> Any:
    """The request body; some blocks carry their headers before a blank line."""
    body = example.get("request_body")
    if isinstance(body, str):
        return json.loads(body.split("\n\n", 1)[1])
    return body


def same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert key in got, key
        if key not in QUIRKS:
            assert got[key] == value, (key, got[key], value)


def replay(server: RunningServer, name: str, message_id: str, **replace: str) -> Any:
    example = EXAMPLES[name]
    path = re.sub(r"/messages(/|\(')AAMkAGE1M2[^/?')]*(?:'\))?",
                  lambda m: f"/messages/{message_id}", example["path"])  # fmt: skip
    for old, new in replace.items():
        path = path.replace(old, new)
    with server.client() as c:
        r = c.request(example["method"], path, json=body_of(example))
    assert r.status_code == status_of(example), (name, r.text)
    return r


def a_draft(server: RunningServer) -> str:
    with server.client() as c:
        r = c.post("/me/messages", json={"subject": "extension examples"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def test_every_copied_example_is_replayed_or_explained() -> None:
    replayed = {
        "post_opentypeextension_2", "opentypeextension-get#2", "get_opentypeextension_5",
        "opentypeextension-update#1", "delete_opentypeextension",
        "get_singlevaluelegacyextendedproperty_1", "singlevaluelegacyextendedproperty-get#2",
        "singlevaluelegacyextendedproperty-get#3",
        "singlevaluelegacyextendedproperty-post-singlevalueextendedproperties#2",
        "multivaluelegacyextendedproperty-post-multivalueextendedproperties#2",
    }  # fmt: skip
    refused = {"singlevaluelegacyextendedproperty-get#5"}  # cast(): a clear 400, below
    assert set(EXAMPLES) == replayed | refused


def test_open_extension_examples(server: RunningServer) -> None:
    message_id = a_draft(server)
    created = replay(server, "post_opentypeextension_2", message_id).json()
    same(created, EXAMPLES["post_opentypeextension_2"]["response_body"])
    assert created["id"] == "microsoft.graph.openTypeExtension.Com.Contoso.Referral"
    assert created["@odata.context"].endswith(f"/messages('{message_id}')/extensions/$entity")

    got = replay(server, "opentypeextension-get#2", message_id).json()
    same(got, EXAMPLES["opentypeextension-get#2"]["response_body"])

    listed = replay(server, "get_opentypeextension_5", message_id).json()
    [item] = [m for m in listed["value"] if m["id"] == message_id]
    expected = EXAMPLES["get_opentypeextension_5"]["response_body"]["value"][0]
    [extension] = item["extensions"]
    # an expanded extension carries no @odata.id here (the message's entity names it)
    same(extension, {k: v for k, v in expected["extensions"][0].items() if k != "@odata.id"})
    assert "extensions@odata.context" not in item or item["extensions@odata.context"]

    updated = replay(server, "opentypeextension-update#1", message_id).json()
    same(updated, EXAMPLES["opentypeextension-update#1"]["response_body"])
    assert updated["dealValue"] == "500100"  # kept as given (Exchange made it a number)

    replay(server, "delete_opentypeextension", message_id)
    with server.client() as c:
        assert c.get(f"/me/messages/{message_id}/extensions").json()["value"] == []


def test_extended_property_examples(server: RunningServer) -> None:
    message_id = a_draft(server)
    replay(server, "singlevaluelegacyextendedproperty-post-singlevalueextendedproperties#2",
           message_id)  # fmt: skip
    replay(server, "multivaluelegacyextendedproperty-post-multivalueextendedproperties#2",
           message_id)  # fmt: skip
    got = replay(server, "get_singlevaluelegacyextendedproperty_1", message_id).json()
    expected = EXAMPLES["get_singlevaluelegacyextendedproperty_1"]["response_body"]
    assert got["singleValueExtendedProperties"] == expected["singleValueExtendedProperties"]
    assert got["singleValueExtendedProperties@odata.context"].endswith(
        f"/messages('{message_id}')/singleValueExtendedProperties"
    )
    for name in ("singlevaluelegacyextendedproperty-get#2",
                 "singlevaluelegacyextendedproperty-get#3"):  # fmt: skip
        found = replay(server, name, message_id).json()["value"]
        assert message_id in [m["id"] for m in found], name
    with server.client() as c:
        palette = "StringArray {66f5a359-4659-4830-9070-00049ec6ac6e} Name Palette"
        r = c.get(f"/me/messages/{message_id}", params={
            "$expand": f"multiValueExtendedProperties($filter=id eq '{palette}')"})  # fmt: skip
        assert r.json()["multiValueExtendedProperties"] == [
            {"id": palette, "value": ["Green", "Aqua", "Blue"]}
        ]


@pytest.mark.parametrize("name", ["singlevaluelegacyextendedproperty-get#5"])
def test_cast_is_refused_clearly(server: RunningServer, name: str) -> None:
    with server.client() as c:
        r = c.get(EXAMPLES[name]["path"])
    assert r.status_code == 400, r.text
    assert "cast() is not supported" in r.json()["error"]["message"]
