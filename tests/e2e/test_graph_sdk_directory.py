"""The official Python SDK's directory calls (GET /me, /users with query options and the
ConsistencyLevel header, paging by nextLink, /users/$count), unchanged, against graphpost."""

from __future__ import annotations

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from tests.conftest import RunningServer
from tests.mail_api import ADELE
from tests.sdk_client import client_for

pytestmark = pytest.mark.anyio


async def test_the_sdk_reads_the_directory(server: RunningServer) -> None:
    client = client_for(server, server.token(scopes="User.Read User.Read.All"))
    me = await client.me.get()
    assert me.display_name == "Adele Vance" and me.user_principal_name == ADELE
    assert me.business_phones == [] and me.job_title is None

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter="startswith(displayName,'A')", orderby=["displayName"], count=True, top=2,
        select=["id", "displayName"],
    )  # fmt: skip
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("ConsistencyLevel", "eventual")
    page = await client.users.get(request_configuration=config)
    names = [u.display_name for u in page.value]
    total = page.odata_count
    while page.odata_next_link:
        page = await client.users.with_url(page.odata_next_link).get(request_configuration=config)
        names += [u.display_name for u in page.value]
    assert names == sorted(names, key=str.lower) and len(names) == total >= 3
    assert all(n.startswith("A") for n in names)

    count_config = RequestConfiguration()
    count_config.headers.add("ConsistencyLevel", "eventual")
    assert await client.users.count.get(request_configuration=count_config) >= 20

    denied = client_for(server, server.token(scopes="Mail.Read"))
    with pytest.raises(ODataError) as caught:
        await denied.me.get()
    assert caught.value.response_status_code == 403
    assert caught.value.error.code == "Authorization_RequestDenied"
