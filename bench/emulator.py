"""The emulator's wait for a delivery: how long after a sendMail's 202 a
``GET /_graphpost/messages?subject=…&wait=10`` returns it (woken by the worker on SQLite; on
PostgreSQL also woken by the in-process worker, with a 1 s poll besides). Run by
``python -m bench --only-emulator``."""

from __future__ import annotations

import statistics
import time
import uuid

from bench.upload import api
from graphpost.testing import GraphpostClient

ALEX = "AlexW@contoso.onmicrosoft.com"


def send_to_awaited(base: str, sends: int) -> tuple[float, float, float]:
    """(sends per second, p50 ms, p99 ms) of sendMail → the wait returning its delivery."""
    gp = GraphpostClient(base)
    gp.reset()
    token = gp.token()
    spans: list[float] = []
    t_all = time.perf_counter()
    for _ in range(sends):
        subject = f"bench {uuid.uuid4().hex}"
        t0 = time.perf_counter()
        message = {"subject": subject, "toRecipients": [{"emailAddress": {"address": ALEX}}]}
        api("POST", f"{base}/v1.0/me/sendMail", token, {"message": message})
        found = gp.messages(subject=subject, wait=10)
        spans.append((time.perf_counter() - t0) * 1000)
        assert found and found[0]["state"] == "delivered", found
    rate = sends / (time.perf_counter() - t_all)
    spans.sort()
    return rate, statistics.median(spans), spans[min(len(spans) - 1, int(len(spans) * 0.99))]
