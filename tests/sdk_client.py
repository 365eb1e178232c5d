"""The official Python SDK (msgraph-sdk) pointed at a test server with a static token."""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessToken
from msgraph import GraphServiceClient

from tests.conftest import RunningServer


class StaticToken:
    """A TokenCredential handing the SDK a token from `graphpost token`."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, 2**31 - 1)


def client_for(server: RunningServer, token: str) -> Any:
    """A GraphServiceClient on ``server``'s /v1.0, authenticated by ``token``."""
    client = GraphServiceClient(StaticToken(token), scopes=["https://graph.microsoft.com/.default"])
    client.request_adapter.base_url = f"{server.base}/v1.0"
    return client
