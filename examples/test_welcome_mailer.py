"""An app's tests with graphpost.testing: send through the Graph API, wait for the delivery
(no sleep), assert on what arrived; and a 429 injected at the Graph layer, which the app
retries after Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from examples.welcome_mailer import WelcomeMailer
from graphpost.testing import GraphpostClient

SENDER = "welcome@shop.example"
ADA = "ada@shop.example"


@pytest.fixture
def mailer(graphpost: GraphpostClient) -> Iterator[tuple[WelcomeMailer, list[float]]]:
    graphpost.seed(Path(__file__).with_name("seed.json"))
    slept: list[float] = []  # the app's waits between retries, recorded instead of slept
    app = WelcomeMailer(graphpost.graph_url, graphpost.token(SENDER), sleep=slept.append)
    yield app, slept
    app.close()


def test_the_welcome_mail_arrives(
    graphpost: GraphpostClient, mailer: tuple[WelcomeMailer, list[float]]
) -> None:
    app, slept = mailer
    app.send_welcome(ADA, "Ada")
    # waits (up to 10 s) for the delivery, woken when it happens
    delivered = graphpost.wait_for_message(to=ADA, subject="welcome", timeout=10)
    assert delivered["state"] == "delivered"
    assert delivered["from"] == SENDER and delivered["subject"] == "Welcome, Ada!"
    # and it is in Ada's inbox, as her own mail client would see it
    with httpx.Client(
        base_url=graphpost.graph_url,
        headers={"Authorization": f"Bearer {graphpost.token(ADA)}"},
    ) as ada:
        [mail] = ada.get("/me/mailFolders/inbox/messages").json()["value"]
    assert mail["from"]["emailAddress"]["address"] == SENDER
    assert "your account is ready" in mail["body"]["content"]
    assert slept == []


def test_the_app_retries_after_a_429(
    graphpost: GraphpostClient, mailer: tuple[WelcomeMailer, list[float]]
) -> None:
    app, slept = mailer
    # the next two sendMail calls are throttled, with Retry-After: 2
    graphpost.fault(429, path="/v1.0/me/sendMail", count=2, retry_after=2)
    app.send_welcome(ADA, "Ada")
    assert slept == [2.0, 2.0]  # it waited what Graph asked, twice, then got through
    assert graphpost.faults() == []
    [delivered] = graphpost.messages(to=ADA, wait=10)  # exactly one mail: no duplicate
    assert delivered["state"] == "delivered"
