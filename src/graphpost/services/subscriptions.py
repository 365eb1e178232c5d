"""Subscriptions: create (with the validation handshake), list, get, renew, delete; who may.

A subscription's notifications are derived from its mailbox's change log (the outbox of
changes, written in the transaction of each change): its ``cursor`` starts at the log's last
entry when it is created, and the dispatcher (``delivery/notifier.py``) moves it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from graphpost.auth.principal import DENIED, Principal
from graphpost.domain import subscriptions as d
from graphpost.domain.subscriptions import SubscriptionInput
from graphpost.errors import (
    AccessDeniedError,
    DelegatedOnlyError,
    InvalidInputError,
    NotFoundError,
    SubscriptionNotFoundError,
    ValidationFailedError,
    ValidationTimeoutError,
)
from graphpost.ports.changes import ChangeLog
from graphpost.ports.subscriptions import (
    ResourceKind,
    Subscription,
    SubscriptionStore,
    WebhookError,
    Webhooks,
)
from graphpost.services.directory import DirectoryService
from graphpost.services.folders import FolderService
from graphpost.types import READ_ROLES, READ_SCOPES

NOT_FOUND = "The object was not found."
HANDSHAKE_SECONDS = 10.0
_MINUTE_MS = 60_000


def iso_ms(ms: int) -> str:
    """``2016-11-20T18:23:45.9350000Z``: Graph's seven-digit fraction, to the millisecond."""
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
        f"{t.tm_sec:02d}.{ms % 1000:03d}0000Z"
    )


def _parse_expiration(value: object) -> int:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            "expirationDateTime is required: the UTC date and time the subscription ends, "
            "e.g. 2030-01-01T00:00:00Z.",
            target="expirationDateTime",
        )
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"expirationDateTime '{d.shown(value)}' is not a date and time "
            "(e.g. 2030-01-01T00:00:00Z).",
            target="expirationDateTime",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _reauth_at(now_ms: int, expires_ms: int) -> int:
    """When reauthorizationRequired is sent: a quarter of the lifetime before the end, at
    most an hour before it."""
    return expires_ms - min(60 * _MINUTE_MS, (expires_ms - now_ms) // 4)


class SubscriptionService:
    def __init__(
        self,
        store: SubscriptionStore,
        directory: DirectoryService,
        folders: FolderService,
        webhooks: Webhooks,
        *,
        changes: ChangeLog | None = None,
        handshake_seconds: float = HANDSHAKE_SECONDS,
    ) -> None:
        self.store = store
        self.directory = directory
        self.folders = folders
        self.webhooks = webhooks
        self.changes = changes
        self.handshake_seconds = handshake_seconds

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _require_read(principal: Principal) -> None:
        """Graph: a read permission of the resource (Mail.ReadBasic, Mail.Read …); the .Shared
        scopes do not subscribe."""
        allowed = READ_SCOPES if principal.delegated else READ_ROLES
        if not principal.permissions & allowed:
            raise AccessDeniedError(DENIED)

    def _url(self, value: object, name: str) -> str:
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{name} is required: an https URL.", target=name)
        why = self.webhooks.check_url(value)
        if why is not None:
            raise InvalidInputError(f"{name} '{d.shown(value)}' is refused: {why}", target=name)
        return value

    async def _reachable(self, url: str, name: str) -> None:
        """An internal receiver (private, loopback, link-local address, or a name resolving to
        one) is refused before any request is made to it."""
        why = await self.webhooks.check_target(url)
        if why is not None:
            raise ValidationFailedError(f"{name} '{d.shown(url)}' is refused: {why}", target=name)

    def _expiry(self, value: object, *, lifecycle: bool, now_ms: int) -> int:
        expires = _parse_expiration(value)
        if expires <= now_ms:
            raise InvalidInputError(
                f"expirationDateTime '{d.shown(str(value))}' is in the past.",
                target="expirationDateTime",
            )
        limit = d.MAX_MINUTES if lifecycle else d.MAX_MINUTES_WITHOUT_LIFECYCLE
        if expires > now_ms + limit * _MINUTE_MS:
            extra = "" if lifecycle else " without a lifecycleNotificationUrl"
            raise InvalidInputError(
                f"Subscription expiration can only be {limit} minutes in the future{extra}.",
                target="expirationDateTime",
            )
        return max(expires, now_ms + d.MIN_MINUTES * _MINUTE_MS)

    async def handshake(self, url: str) -> None:
        """Graph's validation request: POST ``url?validationToken=…`` (text/plain, empty);
        the answer must be 200 with the token, exactly, as its body, within 10 s."""
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token, safe='')}"
        try:
            answer = await self.webhooks.post(
                target, b"", content_type="text/plain; charset=utf-8",
                seconds=self.handshake_seconds,
            )  # fmt: skip
        except WebhookError as exc:
            if "timed out" in str(exc):
                raise ValidationTimeoutError("Subscription validation request timed out.") from None
            raise ValidationFailedError(
                "Subscription validation request failed. Notification endpoint must respond "
                f"with 200 OK to validation request. ({d.shown(str(exc))})"
            ) from None
        if answer.status != 200:
            raise ValidationFailedError(
                "Subscription validation request failed. Notification endpoint must respond "
                f"with 200 OK to validation request (it answered {answer.status})."
            )
        if answer.body != token.encode():
            raise ValidationFailedError(
                "Subscription validation request failed. Response must exactly match "
                "validationToken query parameter."
            )

    # ------------------------------------------------------------------ the use cases

    async def create(self, principal: Principal, data: SubscriptionInput) -> Subscription:
        if data.include_resource_data not in (None, False):
            raise InvalidInputError(
                "includeResourceData is not supported: notifications carry the changed "
                "item's id; read the item to see it.",
                target="includeResourceData",
            )
        change_types = d.parse_change_types(data.change_type)
        resource = d.parse_resource(data.resource)
        notification_url = self._url(data.notification_url, "notificationUrl")
        lifecycle_url = None
        if data.lifecycle_notification_url is not None:
            lifecycle_url = self._url(data.lifecycle_notification_url, "lifecycleNotificationUrl")
        client_state = data.client_state
        if client_state is not None and (
            not isinstance(client_state, str) or len(client_state) > d.MAX_CLIENT_STATE
        ):
            raise InvalidInputError(
                f"clientState must be a string of at most {d.MAX_CLIENT_STATE} characters.",
                target="clientState",
            )
        tls = data.latest_supported_tls_version
        if tls is not None and tls not in d.TLS_VERSIONS:
            raise InvalidInputError(
                f"latestSupportedTlsVersion must be one of {', '.join(d.TLS_VERSIONS)}.",
                target="latestSupportedTlsVersion",
            )
        now_ms = int(time.time() * 1000)
        expires_ms = self._expiry(
            data.expiration_date_time, lifecycle=lifecycle_url is not None, now_ms=now_ms
        )
        mailbox = await self.directory.open_mailbox(principal, resource.user_key)
        if mailbox.rights is not None:  # a mailbox shared with the caller: Graph refuses
            raise AccessDeniedError(
                "Delegated permissions subscribe only to the signed-in user's own mailbox; "
                "use an application permission for other mailboxes."
            )
        self._require_read(principal)
        folder_id = None
        if resource.folder_key is not None:
            folder = await self.folders.resolve(mailbox, resource.folder_key)
            if folder.search is not None:  # its messages' changes name their own folders
                raise InvalidInputError(
                    "Subscriptions to a search folder's messages are not supported: subscribe "
                    "to its source folders.",
                    target="resource",
                )
            folder_id = folder.id
        await self._reachable(notification_url, "notificationUrl")
        if lifecycle_url is not None:
            await self._reachable(lifecycle_url, "lifecycleNotificationUrl")
        await self.handshake(notification_url)
        if lifecycle_url is not None:
            await self.handshake(lifecycle_url)
        cursor = 0 if self.changes is None else await self.changes.last_seq(mailbox.id)
        subscription = Subscription(
            id=str(uuid.UUID(bytes=secrets.token_bytes(16), version=4)),
            tenant_id=principal.tenant_id,
            app_id=principal.app_id,
            creator_id=principal.user_id or principal.app_id,
            delegated=principal.delegated,
            mailbox_id=mailbox.id,
            resource=str(data.resource),
            kind=ResourceKind(resource.kind),
            folder_id=folder_id,
            change_types=change_types,
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            client_state=client_state,
            tls_version=tls if tls is not None else "v1_2",
            created_ms=now_ms,
            expires_ms=expires_ms,
            reauth_ms=_reauth_at(now_ms, expires_ms) if lifecycle_url else None,
            cursor=cursor,
            change_seq=0,
            life_seq=0,
        )
        if not await self.store.create(subscription, max_per_mailbox=d.MAX_PER_MAILBOX):
            raise AccessDeniedError(
                f"The mailbox already has {d.MAX_PER_MAILBOX} subscriptions, the most Graph "
                "allows; delete some first."
            )
        return subscription

    async def _own(self, principal: Principal, subscription_id: str) -> Subscription:
        self._require_read(principal)
        found = await self.store.get(subscription_id)
        if (
            found is None
            or found.tenant_id != principal.tenant_id
            or found.app_id != principal.app_id
            or (principal.delegated and found.creator_id != principal.user_id)
        ):
            raise SubscriptionNotFoundError(NOT_FOUND)
        return found

    async def get(self, principal: Principal, subscription_id: str) -> Subscription:
        return await self._own(principal, subscription_id)

    async def list_(self, principal: Principal) -> list[Subscription]:
        """The caller's own: made by this app, for the signed-in user (delegated), or by this
        app for any mailbox (application)."""
        self._require_read(principal)
        return await self.store.list_for(
            principal.tenant_id,
            principal.app_id,
            principal.user_id if principal.delegated else None,
        )

    async def update(
        self, principal: Principal, subscription_id: str, data: SubscriptionInput
    ) -> Subscription:
        found = await self._own(principal, subscription_id)
        fixed = {
            "changeType": data.change_type,
            "resource": data.resource,
            "clientState": data.client_state,
            "lifecycleNotificationUrl": data.lifecycle_notification_url,
            "includeResourceData": data.include_resource_data,
        }
        for name, value in fixed.items():
            if value is not None:
                raise InvalidInputError(
                    f"{name} cannot be changed: only expirationDateTime and notificationUrl "
                    "can; create a new subscription instead.",
                    target=name,
                )
        if data.expiration_date_time is None and data.notification_url is None:
            raise InvalidInputError(
                "Give expirationDateTime (to renew) or notificationUrl.",
                target="expirationDateTime",
            )
        now_ms = int(time.time() * 1000)
        expires_ms, reauth_ms = found.expires_ms, found.reauth_ms
        if data.expiration_date_time is not None:
            expires_ms = self._expiry(
                data.expiration_date_time, lifecycle=found.lifecycle_url is not None, now_ms=now_ms
            )
            reauth_ms = _reauth_at(now_ms, expires_ms) if found.lifecycle_url else None
        url = None
        if data.notification_url is not None:
            url = self._url(data.notification_url, "notificationUrl")
        # a renewal too: the receivers allowed may have changed since the create
        await self._reachable(url or found.notification_url, "notificationUrl")
        if found.lifecycle_url is not None:
            await self._reachable(found.lifecycle_url, "lifecycleNotificationUrl")
        if url is not None and url != found.notification_url:
            await self.handshake(url)
        renewed = await self.store.renew(
            subscription_id, expires_ms=expires_ms, reauth_ms=reauth_ms, notification_url=url
        )
        if renewed is None:
            raise SubscriptionNotFoundError(NOT_FOUND)
        return renewed

    async def reauthorize(self, principal: Principal, subscription_id: str) -> None:
        """``POST /subscriptions/{id}/reauthorize``: the caller may still read the mailbox
        (its token, its app's access policy); the expiry is not extended."""
        found = await self._own(principal, subscription_id)
        user = await self.directory.user(found.mailbox_id)
        if user is None:
            raise SubscriptionNotFoundError(NOT_FOUND)
        await self.directory.open_mailbox(principal, None if principal.delegated else user.id)

    async def still_allowed(self, s: Subscription) -> bool:
        """Whether the app (and user) that made ``s`` may still open its mailbox: the same
        decision as a request's (the directory and the access service, each cached a few
        seconds), for the principal that made it. An app whose access policy no longer lists
        the mailbox, a mailbox whose user is gone, may not."""
        principal = Principal(
            tenant_id=s.tenant_id, app_id=s.app_id,
            user_id=s.creator_id if s.delegated else None,
            permissions=frozenset(), expires=0,
        )  # fmt: skip
        try:
            await self.directory.open_mailbox(principal, s.mailbox_id)
        except (AccessDeniedError, NotFoundError, DelegatedOnlyError):
            return False
        return True

    async def delete(self, principal: Principal, subscription_id: str) -> None:
        await self._own(principal, subscription_id)
        if not await self.store.delete(subscription_id):
            raise SubscriptionNotFoundError(NOT_FOUND)


def render(s: Subscription, *, with_client_state: bool = True) -> dict[str, object]:
    """The subscription resource as Graph answers it."""
    return {
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.app_id,
        "changeType": ",".join(t for t in d.CHANGE_TYPES if t in s.change_types),
        "clientState": s.client_state if with_client_state else None,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": None,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": iso_ms(s.expires_ms),
        "creatorId": s.creator_id,
        "includeResourceData": False,
        "latestSupportedTlsVersion": s.tls_version,
        "encryptionCertificate": None,
        "encryptionCertificateId": None,
        "notificationUrlAppId": None,
        "notificationContentType": "application/json",
    }
