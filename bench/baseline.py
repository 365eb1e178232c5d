"""The yardstick: a minimal ASGI app that answers every request with a fixed 3.5 KB JSON body,
served by the same uvicorn settings as graphpost (uvloop, httptools, one process)."""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn

BODY = json.dumps({"value": "x" * 3500}).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(BODY)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                access_log=False, log_level="warning", lifespan="off")  # fmt: skip
