"""The ONE mapping from graphpost errors to (HTTP status, Graph error code), and the envelope."""

from __future__ import annotations

import time

import msgspec

from graphpost import errors as e
from graphpost.domain import times

# Most specific first: the first class an error is an instance of decides.
MAPPING: tuple[tuple[type[e.GraphpostError], int, str], ...] = (
    (e.BodyNotReadableError, 400, "UnableToDeserializePostBody"),
    (e.PropertyValueError, 400, "RequestBodyRead"),
    (e.UnprocessableTypeError, 422, "UnprocessableType"),
    (e.MalformedIdError, 400, "ErrorInvalidIdMalformed"),
    (e.InvalidHeaderError, 400, "InvalidInternetMessageHeader"),
    (e.InvalidRecipientsError, 400, "ErrorInvalidRecipients"),
    (e.MessageTooLargeError, 400, "ErrorMessageSizeExceeded"),
    (e.AttachmentTooSmallError, 400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"),
    (e.MimeUnreadableError, 400, "ErrorMimeContentInvalid"),
    (e.MimeContentError, 400, "ErrorMimeContentInvalidBase64String"),
    (e.InefficientFilterError, 400, "InefficientFilter"),
    (e.SearchWithFilterError, 400, "SearchWithFilter"),
    (e.SearchWithOrderByError, 400, "SearchWithOrderBy"),
    (e.UnsupportedQueryError, 400, "Request_UnsupportedQuery"),
    (e.DirectoryQueryError, 400, "Request_BadRequest"),
    (e.BatchFormatError, 400, "BadRequest"),
    (e.UnknownPropertyError, 400, "RequestBroker--ParseUri"),
    (e.QueryError, 400, "BadRequest"),
    (e.DelegatedOnlyError, 400, "BadRequest"),
    (e.ExtendedPropertyIdError, 400, "ErrorInvalidProperty"),
    (e.ExtendedPropertyError, 400, "ErrorInvalidExtendedProperty"),
    (e.ExtendedPropertyValueError, 400, "ErrorInvalidExtendedPropertyValue"),
    (e.MoveCopyError, 400, "ErrorMoveCopyFailed"),
    (e.ValidationTimeoutError, 400, "InvalidRequest"),
    (e.ValidationFailedError, 400, "ValidationError"),
    (e.InvalidTimeZoneError, 400, "InvalidTimeZone"),
    (e.InvalidTimeSettingsError, 400, "ErrorInvalidTimeSettings"),
    (e.InvalidArgumentsError, 400, "InvalidArguments"),
    (e.InvalidOperationError, 400, "ErrorInvalidRequest"),
    (e.InvalidInputError, 400, "ErrorInvalidRequest"),
    (e.UnknownSegmentError, 400, "BadRequest"),
    (e.UnknownUserError, 404, "ErrorInvalidUser"),
    (e.DirectoryObjectNotFoundError, 404, "Request_ResourceNotFound"),
    (e.SubscriptionNotFoundError, 404, "ResourceNotFound"),
    (e.NotFoundError, 404, "ErrorItemNotFound"),
    (e.ExtensionExistsError, 409, "NameAlreadyExists"),
    (e.CategoryExistsError, 409, "ErrorDuplicateCategory"),
    (e.AlreadyExistsError, 409, "ErrorFolderExists"),
    (e.ConflictError, 412, "ErrorIrresolvableConflict"),
    (e.NoPermissionsError, 401, "NoPermissionsInAccessToken"),
    (e.AuthenticationError, 401, "InvalidAuthenticationToken"),
    (e.InsufficientPrivilegesError, 403, "Authorization_RequestDenied"),
    (e.CannotDeleteError, 403, "ErrorDeleteDistinguishedFolder"),
    (e.CannotMoveError, 403, "ErrorMoveDistinguishedFolder"),
    (e.SendAsDeniedError, 403, "ErrorSendAsDenied"),
    (e.AccessDeniedError, 403, "ErrorAccessDenied"),
    (e.ConcurrencyThrottledError, 429, "ApplicationThrottled"),
    (e.RateThrottledError, 429, "TooManyRequests"),
    (e.ThrottledError, 429, "TooManyRequests"),
    (e.RequestTooLargeError, 413, "RequestEntityTooLarge"),
    (e.RequestTimeoutError, 408, "RequestTimeout"),
    (e.RangeNotSatisfiableError, 416, "InvalidRange"),
    (e.UnsupportedMediaTypeError, 415, "UnsupportedMediaType"),
    (e.MethodNotAllowedError, 405, "MethodNotAllowed"),
    (e.SyncStateNotFoundError, 410, "SyncStateNotFound"),
    (e.SyncStateError, 410, "SyncStateInvalid"),
    (e.StoreError, 503, "ServiceUnavailable"),
    (e.InjectedUnavailableError, 503, "ServiceUnavailable"),
    (e.InjectedTimeoutError, 504, "GatewayTimeout"),
    (e.InjectedFaultError, 503, "ServiceUnavailable"),
    # rendered by identity/responses.py in the identity platform's shape; never reaches Graph
    (e.SignInError, 400, "BadRequest"),
)


def status_and_code(error: e.GraphpostError) -> tuple[int, str]:
    for kind, status, code in MAPPING:
        if isinstance(error, kind):
            return status, code
    return 500, "InternalServerError"


def utc_date() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(times.now()))


_encode = msgspec.json.Encoder().encode


def envelope(
    code: str,
    message: str,
    *,
    request_id: str,
    client_request_id: str,
    target: str | None = None,
    status: int | None = None,
) -> bytes:
    """Graph's error body: code, message, innerError with date and both request ids."""
    error: dict[str, object] = {"code": code, "message": message}
    if target:
        error["target"] = target
    inner: dict[str, object] = {}
    if status == 429:  # Graph's throttling answer carries the status inside innerError too
        inner = {"code": "429", "status": "429", "message": message}
    error["innerError"] = {
        **inner,
        "date": utc_date(),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    return _encode({"error": error})
