"""Directory calls against a real server: /me, /users/{id|userPrincipalName}, /users and
/users/$count as Graph answers them (shape, contexts, query options, permissions, tenants)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import RunningServer
from tests.mail_api import ADELE, ALEX, ME, assert_error, unique, user_id

DEFAULT_KEYS = [
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
]  # fmt: skip
EVENTUAL = {"ConsistencyLevel": "eventual"}


def everyone(server: RunningServer) -> str:
    return server.token(scopes="User.Read.All")


def all_users(
    c: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every page of a /users listing, following @odata.nextLink verbatim."""
    out: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        r = c.get(next_url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["value"]
        next_url = body.get("@odata.nextLink")
    return out


def test_me_has_graphs_default_properties(server: RunningServer) -> None:
    with server.client(server.token(scopes="User.Read")) as c:
        r = c.get("/me")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.pop("@odata.context") == f"{server.base}/v1.0/$metadata#users/$entity"
    assert list(body) == DEFAULT_KEYS
    assert body["id"] == user_id(server, ME)
    assert body["displayName"] == "Adele Vance"
    assert body["mail"] == body["userPrincipalName"] == ADELE
    assert body["businessPhones"] == []
    assert body["givenName"] is body["surname"] is body["jobTitle"] is None


def test_graphpost_token_includes_user_read(server: RunningServer) -> None:
    token = server.cli("token", "--user", ADELE).strip()
    with server.client(token) as c:
        assert c.get("/me").status_code == 200
        assert c.get("/me/messages").status_code == 200


def test_me_needs_a_user_permission_and_a_user(server: RunningServer) -> None:
    with server.client(server.token(scopes="Mail.ReadWrite Mail.Send")) as c:
        err = assert_error(c.get("/me"), 403, "Authorization_RequestDenied")
        assert err["message"] == "Insufficient privileges to complete the operation."
        assert_error(c.get("/users"), 403, "Authorization_RequestDenied")
    with server.client(server.app_token(roles="User.Read.All")) as c:
        err = assert_error(c.get("/me"), 400, "BadRequest")
        assert err["message"] == "/me request is only valid with delegated authentication flow."
        assert c.get(f"/users/{ADELE}").status_code == 200
    with server.client(server.app_token(name="mail-only", roles="Mail.Read")) as c:
        assert_error(c.get(f"/users/{ADELE}"), 403, "Authorization_RequestDenied")
        assert_error(c.get("/users"), 403, "Authorization_RequestDenied")


def test_user_read_reads_only_its_own_profile(server: RunningServer) -> None:
    own = user_id(server, ME)
    with server.client(server.token(scopes="User.Read")) as c:
        assert c.get(f"/users/{own}").json()["id"] == own
        assert c.get(f"/users/{quote(ADELE)}").json()["id"] == own
        assert_error(c.get(f"/users/{ALEX}"), 403, "Authorization_RequestDenied")
        # whether another user exists is none of its business
        assert_error(c.get("/users/nobody@contoso.onmicrosoft.com"), 403,
                     "Authorization_RequestDenied")  # fmt: skip
        assert_error(c.get("/users"), 403, "Authorization_RequestDenied")


def test_unknown_user_is_request_resource_not_found(server: RunningServer) -> None:
    with server.client(everyone(server)) as c:
        err = assert_error(c.get("/users/nobody@contoso.onmicrosoft.com"), 404,
                           "Request_ResourceNotFound")  # fmt: skip
    assert err["message"] == (
        "Resource 'nobody@contoso.onmicrosoft.com' does not exist or one of its queried "
        "reference-property objects are not present."
    )


def test_select_and_its_context(server: RunningServer) -> None:
    with server.client(everyone(server)) as c:
        one = c.get(f"/users/{ALEX}", params={"$select": "displayName,MAIL,accountEnabled"})
        many = c.get("/users", params={"$select": "id,displayName", "$top": "2"})
        bad = c.get("/me", params={"$select": "displayName,shoeSize"})
    assert one.json() == {
        "@odata.context": f"{server.base}/v1.0/$metadata#users(displayName,mail,accountEnabled)"
        "/$entity",
        "displayName": "Alex Wilber",
        "mail": ALEX,
        "accountEnabled": True,
    }
    assert many.json()["@odata.context"] == f"{server.base}/v1.0/$metadata#users(id,displayName)"
    assert [list(u) for u in many.json()["value"]] == [["id", "displayName"]] * 2
    err = assert_error(bad, 400, "BadRequest")
    assert "shoeSize" in str(err["message"])


def test_read_basic_shows_only_the_basic_profile(server: RunningServer) -> None:
    select = {"$select": "displayName,mail,userPrincipalName,id,accountEnabled,userType"}
    with server.client(server.token(scopes="User.ReadBasic.All")) as c:
        basic = c.get(f"/users/{ALEX}", params=select).json()
        listed = c.get("/users", params={**select, "$filter": f"mail eq '{ALEX}'"}).json()
    assert basic["displayName"] == "Alex Wilber" and basic["mail"] == ALEX
    assert basic["accountEnabled"] is None and basic["userType"] is None
    assert listed["value"] == [{k: v for k, v in basic.items() if k != "@odata.context"}]
    with server.client(everyone(server)) as c:
        full = c.get(f"/users/{ALEX}", params=select).json()
    assert full["accountEnabled"] is True and full["userType"] == "Member"


def test_list_pages_with_top_and_skiptoken(server: RunningServer) -> None:
    with server.client(everyone(server)) as c:
        first = c.get("/users")
        assert first.status_code == 200
        body = first.json()
        assert body["@odata.context"] == f"{server.base}/v1.0/$metadata#users"
        assert "@odata.count" not in body
        whole = [u["id"] for u in body["value"]]
        assert len(whole) >= 20 and "@odata.nextLink" not in body  # fewer than 100
        assert all(list(u) == DEFAULT_KEYS for u in body["value"])
        paged = all_users(c, "/users?$top=3&$select=id")
        assert [u["id"] for u in paged] == whole
        link = c.get("/users", params={"$top": "3", "$select": "id"}).json()["@odata.nextLink"]
        assert link.startswith(f"{server.base}/v1.0/users?") and "$skiptoken=" in link
        assert "$select=id" in link and "$top=3" in link
        for top in ("0", "1000", "-1"):
            err = assert_error(c.get("/users", params={"$top": top}), 400,
                               "Request_UnsupportedQuery")  # fmt: skip
            assert "Must be between 1 and 999 inclusive" in str(err["message"])
        assert_error(c.get("/users", params={"$top": "x"}), 400, "BadRequest")
        err = assert_error(c.get("/users", params={"$skip": "2"}), 400, "Request_BadRequest")
        assert err["message"] == "'$skip' is not supported by the service."


def test_a_skiptoken_is_a_position_never_sql(server: RunningServer) -> None:
    with server.client(everyone(server)) as c:
        for forged in ("' OR 1=1 --", "%00", "A" * 5000, "e30", "W10"):
            assert_error(c.get("/users", params={"$skiptoken": forged}), 400,
                         "Request_BadRequest")  # fmt: skip
        sly = json.dumps(["", "x' OR '1'='1", "zzzzzzzz' OR '1'='1"]).encode()
        token = base64.urlsafe_b64encode(sly).decode().rstrip("=")
        r = c.get("/users", params={"$skiptoken": token})
        assert r.status_code == 200 and r.json()["value"] == []
        # a position taken under one order is refused under another
        link = c.get("/users", params={"$top": "1"}).json()["@odata.nextLink"]
        skiptoken = link.split("$skiptoken=")[1]
        assert_error(c.get("/users", params={"$skiptoken": skiptoken, "$orderby": "displayName"}),
                     400, "Request_BadRequest")  # fmt: skip


def test_filter_as_graph_runs_it_by_default(server: RunningServer) -> None:
    alex = user_id(server, ALEX)
    with server.client(everyone(server)) as c:

        def names(text: str) -> list[str]:
            r = c.get("/users", params={"$filter": text, "$select": "displayName"})
            assert r.status_code == 200, r.text
            return sorted(u["displayName"] for u in r.json()["value"])

        assert names("startswith(displayName,'Al')") == ["Alex Wilber", "Allan Deyoung"]
        assert names(f"mail eq '{ALEX.upper()}'") == ["Alex Wilber"]
        assert names(f"id eq '{alex}'") == ["Alex Wilber"]
        assert names("userPrincipalName eq 'MeganB@contoso.onmicrosoft.com' or "
                     "displayName eq 'lee gu'") == ["Lee Gu", "Megan Bowen"]  # fmt: skip
        assert names("startswith(mail,'a') and startswith(displayName,'Adele')") == ["Adele Vance"]
        assert names("displayName eq 'x'' or ''1''=''1'") == []
        assert names(f"mail in ('{ALEX}', 'meganb@contoso.onmicrosoft.com', 'no@where')") == [
            "Alex Wilber", "Megan Bowen",
        ]  # fmt: skip
        assert names(f"id in ('{alex}')") == ["Alex Wilber"]
        for advanced_only in ("endswith(mail,'.com')", "displayName ne 'x'",
                              "not startswith(displayName,'A')"):  # fmt: skip
            err = assert_error(c.get("/users", params={"$filter": advanced_only}), 400,
                               "Request_UnsupportedQuery")  # fmt: skip
            assert "ConsistencyLevel" in str(err["message"])
        assert_error(c.get("/users", params={"$filter": "jobTitle eq 'x'"}), 400,
                     "Request_UnsupportedQuery")  # fmt: skip
        assert_error(c.get("/users", params={"$filter": "contains(mail,'a')"}), 400,
                     "Request_UnsupportedQuery")  # fmt: skip
        assert_error(c.get("/users", params={"$filter": "shoeSize eq 'x'"}), 400, "BadRequest")
        assert_error(c.get("/users", params={"$filter": "displayName eq"}), 400, "BadRequest")
        assert_error(c.get("/users", params={"$filter": "x" * 40000}), 400, "BadRequest")
        assert_error(c.get("/users", params={"$filter": "mail eq '\x00'"}), 400,
                     "ErrorInvalidRequest")  # fmt: skip


def test_advanced_queries_need_consistency_level_and_count(server: RunningServer) -> None:
    with server.client(everyone(server)) as c:
        plain = c.get("/users", params={"$count": "true", "$top": "1"}).json()
        assert "@odata.count" not in plain  # Graph ignores $count without the header
        counted = c.get("/users", params={"$count": "true", "$top": "1"}, headers=EVENTUAL)
        total = counted.json()["@odata.count"]
        assert total >= 20 and len(counted.json()["value"]) == 1
        after = c.get(counted.json()["@odata.nextLink"], headers=EVENTUAL).json()
        assert "@odata.count" not in after  # the first page only
        advanced = {"$filter": "endswith(mail,'contoso.onmicrosoft.com') and "
                               "not startswith(displayName,'A')", "$count": "true"}  # fmt: skip
        r = c.get("/users", params=advanced, headers=EVENTUAL)
        assert r.status_code == 200, r.text
        names = [u["displayName"] for u in r.json()["value"]]
        assert r.json()["@odata.count"] == len(names) and names
        assert not any(n.startswith("A") for n in names)
        assert_error(c.get("/users", params=advanced), 400, "Request_UnsupportedQuery")

        raw = c.get("/users/$count", headers=EVENTUAL)
        assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/plain")
        assert int(raw.text) == total
        filtered = c.get("/users/$count", params={"$filter": "startswith(displayName,'Al')"},
                         headers=EVENTUAL)  # fmt: skip
        assert filtered.text == "2"
        err = assert_error(c.get("/users/$count"), 400, "Request_BadRequest")
        assert err["message"] == "$count is not currently supported."
        assert_error(c.get("/users", params={"$count": "yes"}), 400, "BadRequest")
        err = assert_error(c.get("/users", params={"$search": '"displayName:Al"'}), 400,
                           "Request_UnsupportedQuery")  # fmt: skip
        assert "ConsistencyLevel" in str(err["message"])


def test_orderby(server: RunningServer) -> None:
    with server.client(everyone(server)) as c:
        asc = [u["displayName"] for u in all_users(c, "/users?$orderby=displayName&$top=7")]
        assert asc == sorted(asc, key=str.lower) and len(asc) >= 20
        upn = [
            u["userPrincipalName"]
            for u in c.get("/users?$orderby=userPrincipalName").json()["value"]
        ]
        assert upn == sorted(upn, key=str.lower)
        for refused in ({"$orderby": "displayName desc"},
                        {"$orderby": "displayName", "$filter": "startswith(mail,'a')"},
                        {"$orderby": "mail"}, {"$orderby": "displayName,id"}):  # fmt: skip
            err = assert_error(c.get("/users", params=refused), 400, "Request_UnsupportedQuery")
            assert err["message"] == "Sorting not supported for current query."
        desc = all_users(c, "/users?$orderby=displayName desc&$count=true&$top=6", EVENTUAL)
        assert [u["displayName"] for u in desc] == asc[::-1]
        both = c.get("/users", headers=EVENTUAL, params={
            "$orderby": "displayName", "$filter": "startswith(displayName,'A')", "$count": "true",
        })  # fmt: skip
        assert [u["displayName"] for u in both.json()["value"]] == [
            n for n in asc if n.startswith("A")
        ]


def test_users_of_another_tenant_are_never_visible(server: RunningServer) -> None:
    domain = f"{unique('fabrikam')}.example"
    server.cli("users", "add", "--name", "Fabrikam Person", "--mail", f"person@{domain}")
    theirs = server.app_token(name="fab", roles="User.Read.All")  # contoso's app
    foreign = server.cli("token", "--app", "fab", "--roles", "User.Read.All",
                         "--tenant", domain).strip()  # fmt: skip
    with server.client(theirs) as c:
        assert_error(c.get(f"/users/person@{domain}"), 404, "Request_ResourceNotFound")
        listed = all_users(c, "/users?$select=mail")
        assert f"person@{domain}" not in {u["mail"] for u in listed}
    with server.client(foreign) as c:
        assert [u["mail"] for u in all_users(c, "/users?$select=mail")] == [f"person@{domain}"]
        assert_error(c.get(f"/users/{ADELE}"), 404, "Request_ResourceNotFound")
        assert c.get("/users/$count", headers=EVENTUAL).text == "1"


def test_directory_paths_are_read_only_and_checked(server: RunningServer) -> None:
    with server.client(everyone(server)) as c:
        r = c.patch("/me", json={"jobTitle": "x"})
        assert_error(r, 405, "MethodNotAllowed")
        assert r.headers["allow"] == "GET"
        assert_error(c.post("/users", json={}), 405, "MethodNotAllowed")
        assert_error(c.get("/users/%00"), 400, "ErrorInvalidRequest")
        assert_error(c.get("/me", params={"$top": "1"}), 400, "BadRequest")
        assert_error(c.get(f"/users/{'x' * 3000}"), 404, "Request_ResourceNotFound")
        # a mailbox needs a Mail.* permission, a profile does not grant one
        assert_error(c.get(f"/users/{ADELE}/mailFolders/inbox"), 403, "ErrorAccessDenied")


def test_every_permission_graph_lists(server: RunningServer) -> None:
    select = {"$select": "displayName,accountEnabled"}
    cases = [
        (server.token(scopes="Directory.Read.All"), True),
        (server.token(scopes="User.ReadWrite.All"), True),
        (server.app_token(name="dir-reader", roles="Directory.Read.All"), True),
        (server.app_token(name="basic-reader", roles="User.ReadBasic.All"), False),
        (server.token(scopes="User.ReadBasic.All"), False),
    ]
    for token, full in cases:
        with server.client(token) as c:
            one = c.get(f"/users/{ALEX}", params=select)
            listed = c.get("/users", params={**select, "$top": "1"})
        assert one.status_code == listed.status_code == 200, one.text
        assert one.json()["accountEnabled"] is (True if full else None)
        assert listed.json()["value"][0]["accountEnabled"] is (True if full else None)


def test_me_of_a_removed_user_is_not_found(server: RunningServer) -> None:
    upn = f"{unique('gone')}@contoso.onmicrosoft.com"
    server.cli("users", "add", "--name", "Soon Gone", "--mail", upn)
    token = server.token(user=upn, scopes="User.Read")
    server.cli("users", "remove", upn)
    with server.client(token) as c:
        assert_error(c.get("/me"), 404, "Request_ResourceNotFound")


def test_an_address_names_one_user(server: RunningServer) -> None:
    """`users add` refuses a upn that is already someone's mail (and a mail that is someone's
    upn): otherwise carol@ would name bob (by mail) and carol (by upn), and the token
    endpoint, /users/carol@ and delivery could each pick another one."""
    tag = unique("amb")
    bob, carol, carol2 = (f"{tag}-{n}@contoso.onmicrosoft.com" for n in ("bob", "carol", "c2"))
    server.cli("users", "add", "--name", "Bob", "--upn", bob, "--mail", carol)
    for upn, mail, taken in ((carol, carol2, carol), (carol2, bob.upper(), bob)):
        with pytest.raises(AssertionError) as refused:
            server.cli("users", "add", "--name", "Carol", "--upn", upn, "--mail", mail)
        assert f"'{taken}' is already the userPrincipalName or mail address of a user" in str(
            refused.value
        )
    listed = [line.split("\t") for line in server.cli("users", "list").splitlines()]
    assert [row[2] for row in listed if row[1] in (carol, carol2)] == []
    token = server.token(user=carol, scopes="User.Read")
    with server.client(token) as c:
        assert c.get("/me").json()["userPrincipalName"] == bob


@pytest.mark.parametrize(
    ("option", "value", "what"),
    [
        ("--name", "Mallory\r\nX-Injected: 1", "display name"),
        ("--name", "Tab\there", "display name"),
        ("--name", "Esc\x1b[31m", "display name"),
        ("--name", "Next\u2028line", "display name"),
        ("--name", "C1\x85", "display name"),
        ("--mail", "{tag}@contoso.onmicrosoft.com\n", "mail address"),
        ("--upn", "{tag}\r@contoso.onmicrosoft.com", "userPrincipalName"),
    ],
)
def test_users_add_refuses_control_characters(
    server: RunningServer, option: str, value: str, what: str
) -> None:
    tag = unique("ctl")
    args = {"--name": "Fine Name", "--mail": f"{tag}@contoso.onmicrosoft.com"}
    args[option] = value.format(tag=tag)
    with pytest.raises(AssertionError) as refused:
        server.cli("users", "add", *(x for kv in args.items() for x in kv))
    assert "must not contain control characters or line breaks" in str(refused.value)
    assert what in str(refused.value)
    assert tag not in server.cli("users", "list")
