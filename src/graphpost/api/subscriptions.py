"""Routes of the subscription resource: /subscriptions and /subscriptions/{id} (top level,
not below a mailbox: a subscription names its resource in its body)."""

from __future__ import annotations

import msgspec

from graphpost.api.render import Renderer
from graphpost.asgi import Request, Response
from graphpost.auth.principal import Principal
from graphpost.domain.subscriptions import SubscriptionInput
from graphpost.services.subscriptions import SubscriptionService, render

_encode = msgspec.json.Encoder().encode


def _entity(renderer: Renderer, body: dict[str, object]) -> bytes:
    return _encode({"@odata.context": renderer.context("subscriptions/$entity"), **body})


async def create(
    service: SubscriptionService, renderer: Renderer, request: Request, principal: Principal
) -> Response:
    data = request.json(SubscriptionInput)
    created = await service.create(principal, data)
    return Response(201, _entity(renderer, render(created)))


async def list_(
    service: SubscriptionService, renderer: Renderer, request: Request, principal: Principal
) -> Response:
    found = await service.list_(principal)
    # Graph does not return clientState in a list ("for security purposes")
    items = [render(s, with_client_state=False) for s in found]
    return Response(
        200, _encode({"@odata.context": renderer.context("subscriptions"), "value": items})
    )


async def get(
    service: SubscriptionService,
    renderer: Renderer,
    request: Request,
    principal: Principal,
    subscription_id: str,
) -> Response:
    found = await service.get(principal, subscription_id)
    return Response(200, _entity(renderer, render(found)))


async def update(
    service: SubscriptionService,
    renderer: Renderer,
    request: Request,
    principal: Principal,
    subscription_id: str,
) -> Response:
    data = request.json(SubscriptionInput)
    renewed = await service.update(principal, subscription_id, data)
    return Response(200, _entity(renderer, render(renewed)))


async def delete(
    service: SubscriptionService,
    renderer: Renderer,
    request: Request,
    principal: Principal,
    subscription_id: str,
) -> Response:
    await service.delete(principal, subscription_id)
    return Response(204, content_type=None)


async def reauthorize(
    service: SubscriptionService,
    renderer: Renderer,
    request: Request,
    principal: Principal,
    subscription_id: str,
) -> Response:
    await service.reauthorize(principal, subscription_id)
    return Response(204, content_type=None)
