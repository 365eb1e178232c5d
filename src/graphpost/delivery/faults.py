"""Emulator mode's SMTP fault injection: a transport in front of the relay's that answers the
recipients an SMTP fault rule matches itself (a 4xx or 5xx, or a dropped connection) and hands
the others to the real relay. Chosen by the runtime in emulator mode only."""

from __future__ import annotations

from graphpost.delivery.transport import DeliveryTransport, Mime, Reply, reply
from graphpost.services.emulator import Faults


class FaultyTransport:
    def __init__(self, inner: DeliveryTransport, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    async def send(self, sender: str, recipients: list[str], mime: Mime) -> dict[str, Reply]:
        answers: dict[str, Reply] = {}
        passed: list[str] = []
        for recipient in recipients:
            rule = self.faults.pick_smtp(recipient)
            if rule is None:
                passed.append(recipient)
            elif rule.drop:
                # the session is cut: no recipient of it gets an answer (a temporary failure)
                return {r: Reply(None, None, rule.text) for r in recipients}
            else:
                text = f"{rule.enhanced} {rule.text}" if rule.enhanced else rule.text
                answers[recipient] = reply(rule.code, text)
        if passed:
            answers.update(await self.inner.send(sender, passed, mime))
        return answers

    async def close(self) -> None:
        await self.inner.close()
