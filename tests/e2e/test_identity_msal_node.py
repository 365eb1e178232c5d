"""MSAL for Node (``@azure/msal-node``, ``tests/js``) takes graphpost as its authority over
HTTPS: client credentials, a wrong secret, and the device code flow with a person signing in
on ``/devicelogin``."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import httpx
import jwt
import pytest

from tests.conftest import RunningServer, start_server
from tests.identity_pages import DEMO, DEMO_CLIENT, read_form
from tests.mail_api import DEMO_TENANT
from tests.node import JS_DIR as JS
from tests.node import node as find_node


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("msal-node"), args=("--tls",))
    yield running
    running.stop()


def test_msal_node_client_credentials_and_device_code(tls: RunningServer) -> None:
    executable, _ = find_node()
    app = json.loads(
        tls.cli(
            "apps", "add", "--tenant", DEMO_TENANT, "node-daemon", "--roles", "Mail.Read", "--json"
        )
    )
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(tls.data_dir / "tls" / "cert.pem")}
    node = subprocess.Popen(
        [executable, str(JS / "identity_flows.mjs"), tls.base, app["tenant_id"], app["client_id"],
         app["client_secret"], DEMO_CLIENT],
        cwd=JS, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert node.stdout is not None
        prompt = json.loads(node.stdout.readline() or "{}")
        assert prompt.get("uri") == f"{tls.base}/devicelogin", prompt
        with httpx.Client(verify=tls.verify, timeout=30) as browser:
            target, fields = read_form(browser.get(prompt["uri"]).text)
            fields.update(user_code=prompt["userCode"], username=f"IrvinS@{DEMO}",
                          password="graphpost-demo", action="allow")  # fmt: skip
            assert browser.post(target, data=fields).status_code == 200
        out, err = node.communicate(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["wrongSecret"] == "invalid_client"
    assert jwt.decode(result["appToken"], options={"verify_signature": False})["roles"] == [
        "Mail.Read"
    ]
    assert result["username"] == f"IrvinS@{DEMO}"
    for token in (result["appToken"], result["userToken"]):
        with tls.client(token) as c:
            path = (
                "/me/messages" if token == result["userToken"] else f"/users/IrvinS@{DEMO}/messages"
            )
            assert c.get(path).status_code == 200
