"""Replay the Graph docs' folder examples: mailFolder copy and move, mailSearchFolder create,
get and list (``data/graph-doc-examples.json`` and ``data/folder-doc-examples.json``, whose
``source`` keys name the pages). Sample ids map onto folders the test creates."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from tests.conformance import shapes
from tests.conftest import RunningServer

HERE = Path(__file__).parent / "data"
OLD = {e["name"]: e for e in json.loads((HERE / "graph-doc-examples.json").read_text())["examples"]}
NEW = {
    e["name"]: e for e in json.loads((HERE / "folder-doc-examples.json").read_text())["examples"]
}
USER = "JoniS@contoso.onmicrosoft.com"
SAMPLE = re.compile(r"-value$")
VOLATILE = {
    "id",
    "@odata.context",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "sourceFolderIds",
}


def _status(example: dict[str, Any]) -> int:
    return int(example.get("documented_status") or example["expected_status"])


def _folder(c: Any, name: str) -> dict[str, Any]:
    r = c.post("/me/mailFolders/inbox/childFolders", json={"displayName": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_copy_and_move_examples(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        source = _folder(c, f"copied {uuid.uuid4().hex[:8]}")
        copies = _folder(c, f"copies {uuid.uuid4().hex[:8]}")
        moved_to = _folder(c, f"moved to {uuid.uuid4().hex[:8]}")
        for example, target in (
            (OLD["mailfolder_copy"], copies),
            (NEW["mailfolder_move"], moved_to),
        ):
            assert example["request_body"] == {"destinationId": "destinationId-value"}
            r = c.post(
                example["path"].replace("{id}", source["id"]), json={"destinationId": target["id"]}
            )
            assert r.status_code == _status(example), r.text
            shapes.check_shape(r.json(), example["response_body"], VOLATILE, sample=SAMPLE)
            assert r.json()["parentFolderId"] == target["id"]
        # copy made a new folder; move kept the id
        copied = c.get(f"/me/mailFolders/{copies['id']}/childFolders").json()["value"]
        assert len(copied) == 1 and copied[0]["id"] != source["id"]
        moved = c.get(f"/me/mailFolders/{moved_to['id']}/childFolders").json()["value"]
        assert [m["id"] for m in moved] == [source["id"]]


def test_search_folder_examples(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        inbox = c.get("/me/mailFolders/inbox").json()["id"]
        create = NEW["create_mailsearchfolder"]
        sample = create["sample_keys"][0]
        body = json.loads(json.dumps(create["request_body"]).replace(sample, inbox))
        r = c.post(create["path"].replace(sample, inbox), json=body)
        assert r.status_code == create["expected_status"], r.text
        made = r.json()
        shapes.check_shape(made, create["response_body"], VOLATILE, sample=SAMPLE)
        assert made["parentFolderId"] == inbox and made["sourceFolderIds"] == [inbox]
        assert made["@odata.context"].endswith(f"/mailFolders('{inbox}')/childFolders/$entity")
        # the get example's folder, made the same way, read back
        get = OLD["get_mailSearchfolder"]
        expected = get["response_body"]
        r = c.post(
            "/me/mailFolders/inbox/childFolders",
            json={
                "@odata.type": "microsoft.graph.mailSearchFolder",
                "displayName": expected["displayName"],
                "sourceFolderIds": ["inbox"],
                "includeNestedFolders": expected["includeNestedFolders"],
                "filterQuery": expected["filterQuery"],
            },
        )
        assert r.status_code == 201, r.text
        got = c.get(get["path"].replace(get["path"].rsplit("/", 1)[1], r.json()["id"]))
        assert got.status_code == _status(get)
        shapes.check_shape(got.json(), expected, VOLATILE, sample=SAMPLE)
        # in a list of folders, with its type
        listing = NEW["get_mailfolders_with_search_folder"]
        kids = c.get("/me/mailFolders/inbox/childFolders").json()
        entry = next(k for k in kids["value"] if k["id"] == made["id"])
        shapes.check_shape(
            entry,
            {**listing["response_body"]["value"][0], "id": made["id"]},
            VOLATILE,
            sample=SAMPLE,
        )
