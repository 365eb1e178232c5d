"""graphpost's error tree. Errors carry data, never HTTP codes: ``api/errors.py`` maps them.

GraphpostError
├── InvalidInputError            the request's content is wrong
│   ├── BodyNotReadableError     not JSON / wrong shape at the top
│   ├── PropertyValueError       a property of the wrong type or value
│   ├── UnprocessableTypeError   an abstract type without @odata.type
│   ├── MalformedIdError         an id that cannot be one of ours
│   ├── InvalidHeaderError       internetMessageHeaders rule
│   ├── InvalidRecipientsError   no or bad recipients
│   ├── QueryError               a malformed OData query option
│   │   ├── UnknownPropertyError a property the type does not have
│   │   └── InefficientFilterError  the $filter/$orderby rule
│   │   ├── UnsupportedQueryError  a query the directory does not run (Request_UnsupportedQuery)
│   │   └── DirectoryQueryError  a malformed directory query (Request_BadRequest)
│   ├── InvalidTimeZoneError     a time zone that is neither IANA nor Windows (mailboxSettings)
│   ├── InvalidTimeSettingsError working hours that end before they start
│   ├── InvalidArgumentsError    a value outside a setting's list (a day of the week)
│   ├── InvalidOperationError    well-formed but not allowed on this item
│   │   └── MoveCopyError        a folder moved or copied into itself or below it
│   ├── ExtendedPropertyIdError  an extended property id in none of Graph's formats
│   ├── ExtendedPropertyError    an extended property type that does not fit, or too many
│   ├── ExtendedPropertyValueError  a value its extended property's type cannot hold
│   ├── BatchFormatError         a $batch body Graph refuses whole
│   ├── DelegatedOnlyError       /me with an application token
│   ├── MessageTooLargeError     over the message size limit
│   ├── AttachmentTooSmallError  an upload session for a file under 3 MB
│   ├── MimeContentError         a text/plain body that is not base64 MIME
│   │   └── MimeUnreadableError  base64 of something that is not a message
│   └── ValidationFailedError    a notification URL that failed its validation request
│       └── ValidationTimeoutError  ... or did not answer it within 10 s
├── NotFoundError                an id or name that does not exist
│   ├── UnknownUserError         /users/{id} that names nobody here
│   ├── DirectoryObjectNotFoundError  a user the directory API cannot find
│   ├── UnknownSegmentError      a URL segment that is not a resource
│   └── SubscriptionNotFoundError  a subscription that is not there (or not the caller's)
├── AlreadyExistsError           a name that must be unique is taken
│   ├── ExtensionExistsError     an open extension of that name is already on the item
│   └── CategoryExistsError      a master category of that name is already in the list
├── ConflictError                If-Match does not match the change key
├── AuthenticationError          no, bad, expired or foreign token
│   └── NoPermissionsError       a token with neither scp nor roles
├── AccessDeniedError            a valid token without the right
│   ├── CannotDeleteError        a distinguished folder
│   ├── CannotMoveError          a distinguished folder cannot move
│   ├── InsufficientPrivilegesError  a directory call without a User.* permission
│   └── SendAsDeniedError        a `from` the caller may not send as
├── ThrottledError               over Graph's per-app, per-mailbox limits
│   ├── ConcurrencyThrottledError  more than 4 requests at once
│   └── RateThrottledError       more than 10,000 requests in 10 minutes
├── RequestTooLargeError         over the request size cap
├── RequestTimeoutError          the request body did not arrive in time
├── RangeNotSatisfiableError     an upload part that does not start where the session stands
├── UnsupportedMediaTypeError    a Content-Type we cannot read
├── MethodNotAllowedError        a method the resource does not have
├── StoreError                   the database failed (not the caller's fault)
│   └── BlobMissingError         a blob named by digest is no longer stored
└── SignInError                  the identity platform's refusals (OAuth error + AADSTS code)
"""

from __future__ import annotations


class GraphpostError(Exception):
    """Base of every error graphpost raises on purpose."""

    def __init__(self, message: str, *, target: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target


class InvalidInputError(GraphpostError):
    """The request's content is wrong (a property's type or value)."""


class BodyNotReadableError(InvalidInputError):
    """The request body is not JSON, or not a JSON object."""


class PropertyValueError(InvalidInputError):
    """A property of the wrong type, or a value outside its enumeration."""


class UnprocessableTypeError(InvalidInputError):
    """An attachment (or other abstract type) without its @odata.type."""


class MalformedIdError(InvalidInputError):
    """An id that cannot be one of ours."""


class InvalidHeaderError(InvalidInputError):
    """An internetMessageHeaders entry that breaks the x- rule."""


class InvalidRecipientsError(InvalidInputError):
    """No recipients, or a recipient that is not an address."""


class QueryError(InvalidInputError):
    """A malformed OData query option ($filter, $select, $top, ...)."""


class UnknownPropertyError(QueryError):
    """A query names a property the resource does not have."""


class InefficientFilterError(QueryError):
    """$orderby properties must lead $filter, in the same order."""


class SearchWithFilterError(QueryError):
    """$search with $filter on messages."""


class SearchWithOrderByError(QueryError):
    """$search with $orderby on messages."""


class InvalidTimeZoneError(InvalidInputError):
    """A time zone that is neither an IANA name nor a Windows one we know."""


class InvalidTimeSettingsError(InvalidInputError):
    """Working hours (or an automatic-replies schedule) that end before they start."""


class InvalidArgumentsError(InvalidInputError):
    """A value a mailbox setting does not have (Exchange's InvalidArguments)."""


class UnsupportedQueryError(QueryError):
    """A directory query the service does not run (or not without advanced query parameters)."""


class DirectoryQueryError(QueryError):
    """A malformed or refused query option on a directory call ($skip, $count without
    ConsistencyLevel)."""


class BatchFormatError(InvalidInputError):
    """A JSON batch body that is refused as a whole (400 for the batch, not per request)."""


class InvalidOperationError(InvalidInputError):
    """Well-formed, but not allowed on this item (e.g. editing a sent message's body)."""


class MoveCopyError(InvalidOperationError):
    """A folder moved or copied into itself or one of its subfolders (ErrorMoveCopyFailed)."""


class ExtendedPropertyIdError(InvalidInputError):
    """An extended property id in none of the three formats (Graph: ErrorInvalidProperty)."""


class ExtendedPropertyError(InvalidInputError):
    """An id of an unknown type, or of a multi-value type where a single value is expected
    (and the reverse), or too many properties (Graph: ErrorInvalidExtendedProperty)."""


class ExtendedPropertyValueError(InvalidInputError):
    """A value its type cannot hold (Graph: ErrorInvalidExtendedPropertyValue)."""


class DelegatedOnlyError(InvalidInputError):
    """/me needs a user: an application token must name the mailbox."""


class MessageTooLargeError(InvalidInputError):
    """The message is over the configured maximum size."""


class AttachmentTooSmallError(InvalidInputError):
    """An upload session for a file under the 3 MB minimum."""


class RangeNotSatisfiableError(GraphpostError):
    """An upload part that does not start at the session's next expected offset."""


class MimeContentError(InvalidInputError):
    """A MIME request body (``Content-Type: text/plain``) that is not base64."""


class MimeUnreadableError(MimeContentError):
    """Base64 that decodes to something that is not an RFC 5322 message, or whose structure
    could not be read in time."""


class ValidationFailedError(InvalidInputError):
    """A notification URL that did not answer its validation request with 200 and the token."""


class ValidationTimeoutError(ValidationFailedError):
    """A notification URL that did not answer its validation request in time."""


class NotFoundError(GraphpostError):
    """An id or name that does not exist (or that the caller may not see)."""


class UnknownUserError(NotFoundError):
    """/users/{id|userPrincipalName} that names no user of this server."""


class DirectoryObjectNotFoundError(NotFoundError):
    """A directory call (/users/{id}) naming no user the caller's tenant has."""


class UnknownSegmentError(NotFoundError):
    """A URL segment that names no resource."""


class SubscriptionNotFoundError(NotFoundError):
    """A subscription that does not exist, or that another app or user created."""


class AlreadyExistsError(GraphpostError):
    """A name that must be unique is already taken."""


class CategoryExistsError(AlreadyExistsError):
    """POST …/outlook/masterCategories with a displayName the list already has."""


class ExtensionExistsError(AlreadyExistsError):
    """POST …/extensions with the name of an extension the item already has."""


class ConflictError(GraphpostError):
    """The change key given by the client does not match the item's."""


class AuthenticationError(GraphpostError):
    """No token, a malformed, expired or foreign one."""


class NoPermissionsError(AuthenticationError):
    """A token that carries neither scp nor roles."""


class AccessDeniedError(GraphpostError):
    """A valid token without the right for this call or mailbox."""


class InsufficientPrivilegesError(AccessDeniedError):
    """A directory call the token's permissions do not cover (Authorization_RequestDenied)."""


class CannotDeleteError(AccessDeniedError):
    """A distinguished (well-known) folder cannot be deleted or renamed."""


class CannotMoveError(AccessDeniedError):
    """A distinguished (well-known) folder cannot be moved (ErrorMoveDistinguishedFolder)."""


class ThrottledError(GraphpostError):
    """Over the per-app, per-mailbox request rate or concurrency; retry after some seconds."""

    def __init__(self, message: str, *, retry_after: int, limit: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


class ConcurrencyThrottledError(ThrottledError):
    """More requests at once than the mailbox concurrency limit."""


class RateThrottledError(ThrottledError):
    """More requests in the window than the rate limit."""


class InjectedFaultError(GraphpostError):
    """An answer the emulator's fault injection gave in place of the real one (emulator mode
    only): ``retry_after`` seconds go out in Retry-After."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InjectedUnavailableError(InjectedFaultError):
    """An injected 503."""


class InjectedTimeoutError(InjectedFaultError):
    """An injected 504, given after the request's work was done (and its answer dropped)."""


class RequestTooLargeError(GraphpostError):
    """The request is over the size cap."""


class RequestTimeoutError(GraphpostError):
    """The client did not send the request body in time."""


class UnsupportedMediaTypeError(GraphpostError):
    """The request's Content-Type cannot be read for this call."""


class MethodNotAllowedError(GraphpostError):
    """The resource exists but does not support this HTTP method; ``allowed``: those it does."""

    def __init__(self, message: str, *, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class StoreError(GraphpostError):
    """The database failed; not the caller's fault."""


class ReferenceGoneError(NotFoundError, StoreError):
    """A write naming a row (a folder, a message) that another request removed after it was
    checked: the foreign key failed. What the write named is gone: 404, not the database's
    fault (still a ``StoreError`` to code that handles the database's)."""


class SendAsDeniedError(AccessDeniedError):
    """The message's `from` is a mailbox the caller may not send as."""


class SignInError(GraphpostError):
    """The identity platform refused a request (token, authorize, device code endpoints):
    ``error`` is the OAuth 2.0 code (``invalid_client``, ``invalid_grant``, …), ``aadsts``
    the identity platform's number, ``status`` the HTTP status (400 or 401). Rendered once,
    in ``identity/responses.py``, in the identity platform's shape, never as a Graph error."""

    def __init__(self, error: str, aadsts: int, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.aadsts = aadsts
        self.status = status


class BlobMissingError(StoreError):
    """A blob referred to by its digest is no longer stored (its last user went, swept)."""


class SyncStateError(GraphpostError):
    """A delta token this server cannot continue from: malformed, or made for another
    folder or mailbox (the client synchronises again from the start)."""


class SyncStateNotFoundError(SyncStateError):
    """A delta token older than what the change log still holds (or for another folder)."""
