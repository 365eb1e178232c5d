"""Directory calls: ``GET /me``, ``GET /users/{id|userPrincipalName}``, ``GET /users`` and
``GET /users/$count``, answered as Graph answers them (default properties, ``$select``,
``$filter``, ``$orderby``, ``$top``, ``$count`` with ``ConsistencyLevel: eventual``, paging by
``$skiptoken``)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote

import msgspec

from graphpost.api.odata import parse_filter, parse_orderby
from graphpost.asgi import Request, Response
from graphpost.auth.principal import Principal
from graphpost.domain.query import And, Compare, FunctionCall, Node, Not, Or
from graphpost.errors import DirectoryQueryError, QueryError, UnsupportedQueryError
from graphpost.ports.directory import User, UserQuery
from graphpost.services.directory import DirectoryService

_encode = msgspec.json.Encoder().encode

# The properties Graph returns for a user by default, in Graph's order.
DEFAULT_PROPS = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)  # fmt: skip
# Other user properties $select may name (values we do not keep are null).
EXTRA_PROPS = (
    "accountEnabled", "ageGroup", "city", "companyName", "country", "createdDateTime",
    "department", "employeeId", "faxNumber", "imAddresses", "mailNickname", "otherMails",
    "postalCode", "proxyAddresses", "state", "streetAddress", "usageLocation", "userType",
)  # fmt: skip
USER_PROPS = {name.lower(): name for name in (*DEFAULT_PROPS, *EXTRA_PROPS)}
# What User.ReadBasic.All shows; every other property reads null (as Graph answers it).
BASIC_PROPS = frozenset({"displayName", "givenName", "surname", "mail", "userPrincipalName", "id"})
# $filter: property → (operators by default, operators with advanced query parameters)
_FILTERABLE = {
    "id": ({"eq"}, {"ne", "not"}),
    "displayname": ({"eq", "startswith"}, {"ne", "not"}),
    "mail": ({"eq", "startswith"}, {"ne", "not", "endswith"}),
    "userprincipalname": ({"eq", "startswith"}, {"ne", "not", "endswith"}),
}
_ORDERABLE = ("displayname", "userprincipalname")
DEFAULT_TOP = 100
MAX_TOP = 999
_MAX_SKIPTOKEN = 2048
TEXT_TYPE = b"text/plain;charset=utf-8"
SORTING = "Sorting not supported for current query."


def _values(user: User, names: tuple[str, ...] | list[str], basic: bool) -> dict[str, Any]:
    local = user.upn.split("@", 1)[0]
    known: dict[str, Any] = {
        "businessPhones": [],
        "displayName": user.display_name,
        "mail": user.mail,
        "userPrincipalName": user.upn,
        "id": user.id,
        "accountEnabled": True,
        "imAddresses": [],
        "mailNickname": local,
        "otherMails": [],
        "proxyAddresses": [f"SMTP:{user.mail}"],
        "userType": "Member",
    }
    out: dict[str, Any] = {}
    for name in names:
        value = known.get(name)
        if basic and name not in BASIC_PROPS:
            value = [] if isinstance(value, list) else None
        out[name] = value
    return out


def _select(request: Request) -> list[str] | None:
    raw = request.query.get("$select")
    if raw is None:
        return None
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        canon = "*" if name == "*" else USER_PROPS.get(name.lower())
        if canon is None:
            raise QueryError(
                "Parsing OData Select and Expand failed: Could not find a property named "
                f"'{name[:100]}' on type 'microsoft.graph.user'."
            )
        if canon == "*":
            return [*DEFAULT_PROPS, *EXTRA_PROPS]
        if canon not in out:
            out.append(canon)
    return out or None


def _context(base: str, select: list[str] | None, *, entity: bool) -> str:
    fragment = "users" if select is None else f"users({','.join(select)})"
    return f"{base}/v1.0/$metadata#{fragment}" + ("/$entity" if entity else "")


def _eventual(request: Request) -> bool:
    return request.headers.get("consistencylevel", "").strip().lower() == "eventual"


def _true_false(request: Request, name: str) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise QueryError(f"The value of {name} must be true or false, not '{raw[:50]}'.")
    return raw.lower() == "true"


# ------------------------------------------------------------------------------ one user


async def get(
    directory: DirectoryService, base: str, request: Request, principal: Principal, key: str | None
) -> Response:
    _refuse_collection_options(request)
    select = _select(request)
    profile = await directory.profile(principal, key)
    names = select or DEFAULT_PROPS
    body = {
        "@odata.context": _context(base, select, entity=True),
        **_values(profile.user, names, profile.basic),
    }
    return Response(200, _encode(body))


def _refuse_collection_options(request: Request) -> None:
    for name in ("$filter", "$orderby", "$top", "$skip", "$count", "$search"):
        if name in request.query:
            raise QueryError(
                "The query specified in the URI is not valid. The requested resource is not a "
                "collection. Query options $filter, $orderby, $count, $skip, and $top can be "
                "applied only on collections."
            )


# ------------------------------------------------------------------------------ the list


def _check_filter(node: Node, advanced: bool) -> None:
    """Only what Graph runs on these properties (by default, or with advanced queries)."""
    stack: list[Node] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (And, Or)):
            stack += [item.left, item.right]
            continue
        if isinstance(item, Not):
            if not advanced:
                raise UnsupportedQueryError(
                    "Operator 'not' is not supported because the required parameters might be "
                    "missing. Try adding $count=true query parameter and ConsistencyLevel:"
                    "eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for "
                    "more information"
                )
            stack.append(item.operand)
            continue
        if isinstance(item, Compare):
            prop, op, lit = item.left, item.op, item.right
        elif isinstance(item, FunctionCall):
            prop, op, lit = item.prop, item.name, item.arg
        else:
            raise UnsupportedQueryError("Unsupported or invalid query filter clause specified.")
        name = prop.name
        if name not in _FILTERABLE:
            if len(prop.path) == 1 and name in USER_PROPS:
                raise UnsupportedQueryError(
                    "Unsupported or invalid query filter clause specified for property "
                    f"'{USER_PROPS[name]}' of resource 'User'."
                )
            raise QueryError(
                f"Could not find a property named '{name[:100]}' on type 'microsoft.graph.user'."
            )
        default, extra = _FILTERABLE[name]
        if op not in default:
            if op in extra and not advanced:
                raise UnsupportedQueryError(
                    f"Operator '{op}' is not supported because the required parameters might "
                    "be missing. Try adding $count=true query parameter and ConsistencyLevel:"
                    "eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for "
                    "more information"
                )
            if op not in extra:
                raise UnsupportedQueryError(
                    "Unsupported or invalid query filter clause specified for property "
                    f"'{USER_PROPS[name]}' of resource 'User'."
                )
        if lit.kind != "string":
            raise UnsupportedQueryError(
                "Unsupported or invalid query filter clause specified for property "
                f"'{USER_PROPS[name]}' of resource 'User'."
            )


def _skiptoken(raw: str, order: str | None) -> tuple[str, str]:
    """The position a nextLink's $skiptoken names: only ever bound as SQL values."""
    problem = DirectoryQueryError("The $skiptoken value is not valid; follow @odata.nextLink.")
    if len(raw) > _MAX_SKIPTOKEN:
        raise problem
    try:
        decoded = msgspec.json.decode(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise problem from None
    if (
        not isinstance(decoded, list)
        or len(decoded) != 3
        or not all(isinstance(v, str) for v in decoded)
        or decoded[0] != (order or "")
    ):
        raise problem
    return decoded[1], decoded[2]


def _make_skiptoken(order: str | None, after: tuple[str, str]) -> str:
    raw = _encode([order or "", after[0], after[1]])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _top(request: Request) -> int:
    raw = request.query.get("$top")
    if raw is None:
        return DEFAULT_TOP
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(
            f"Invalid value '{raw[:50]}' for $top: a whole number is required."
        ) from None
    if not 1 <= value <= MAX_TOP:
        raise UnsupportedQueryError(
            f"Invalid page size specified: '{raw[:20]}'. Must be between 1 and {MAX_TOP} inclusive."
        )
    return value


def user_query(request: Request) -> tuple[UserQuery, bool]:
    """The query a /users request asks for, and whether it asked for @odata.count; Graph's
    errors for what the directory does not run."""
    q = request.query
    if "$skip" in q:
        raise DirectoryQueryError("'$skip' is not supported by the service.")
    if "$expand" in q:
        raise UnsupportedQueryError("$expand is not supported on users by this server.")
    eventual = _eventual(request)
    count = _true_false(request, "$count")
    advanced = eventual and count
    if "$search" in q:
        if not eventual:
            raise UnsupportedQueryError(
                "Request with $search query parameter only works through MSGraph with a special "
                "request header: 'ConsistencyLevel: eventual'"
            )
        raise UnsupportedQueryError("$search is not supported on users by this server.")
    where = None
    if (text := q.get("$filter")) is not None:
        where = parse_filter(text)
        _check_filter(where, advanced)
    order, descending = None, False
    if (text := q.get("$orderby")) is not None:
        terms = parse_orderby(text)
        if len(terms) != 1 or terms[0].prop.name not in _ORDERABLE:
            raise UnsupportedQueryError(SORTING)
        order, descending = terms[0].prop.name, terms[0].descending
        if not advanced and (descending or where is not None):
            raise UnsupportedQueryError(SORTING)
    after = None
    if (token := q.get("$skiptoken")) is not None:
        after = _skiptoken(token, order)
    query = UserQuery(
        tenant_id="",  # the service scopes every query to the caller's tenant
        where=where,
        order=order,
        descending=descending,
        top=_top(request),
        after=after,
        count=eventual and count and after is None,  # Graph counts on the first page only
    )
    return query, query.count


def _next_link(base: str, request: Request, token: str) -> str:
    params = {k: v for k, v in request.query.items() if k != "$skiptoken"}
    params["$skiptoken"] = token
    query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE)}" for k, v in params.items())
    return f"{base}/v1.0/users?{query}"


_SAFE = "$(),/:'"


async def list_(
    directory: DirectoryService, base: str, request: Request, principal: Principal
) -> Response:
    select = _select(request)
    query, counted = user_query(request)
    page, basic = await directory.profiles(principal, query)
    names = select or DEFAULT_PROPS
    body: dict[str, Any] = {"@odata.context": _context(base, select, entity=False)}
    if counted:
        body["@odata.count"] = page.count
    body["value"] = [_values(u, names, basic) for u in page.users]
    if page.next_after is not None:
        body["@odata.nextLink"] = _next_link(
            base, request, _make_skiptoken(query.order, page.next_after)
        )
    return Response(200, _encode(body))


async def count(
    directory: DirectoryService, base: str, request: Request, principal: Principal
) -> Response:
    """``GET /users/$count``: the number alone, as text; only with ConsistencyLevel: eventual."""
    if not _eventual(request):
        raise DirectoryQueryError("$count is not currently supported.")
    for name in ("$select", "$orderby", "$skiptoken"):
        request.query.pop(name, None)
    request.query.update({"$count": "true", "$top": "1"})
    query, _ = user_query(request)
    page, _ = await directory.profiles(principal, query)
    return Response(200, str(page.count or 0).encode(), content_type=TEXT_TYPE)
