from __future__ import annotations

import json

from graphpost import errors as e
from graphpost.api.errors import MAPPING, envelope, status_and_code


def test_every_error_class_is_mapped() -> None:
    def subclasses(cls: type[e.GraphpostError]) -> list[type[e.GraphpostError]]:
        out: list[type[e.GraphpostError]] = []
        for sub in cls.__subclasses__():
            out += [sub, *subclasses(sub)]
        return out

    for cls in subclasses(e.GraphpostError):
        if issubclass(cls, e.ThrottledError):
            error: e.GraphpostError = cls("x", retry_after=1, limit=1)
        elif issubclass(cls, e.SignInError):
            error = cls("invalid_request", 900144, "x")
        else:
            error = cls("x")
        status, code = status_and_code(error)
        assert status != 500, cls
        assert code


def test_specific_before_general() -> None:
    classes = [kind for kind, _, _ in MAPPING]
    for i, kind in enumerate(classes):
        for later in classes[i + 1 :]:
            assert not issubclass(later, kind) or later is kind, (kind, later)


def test_envelope_shape() -> None:
    body = json.loads(envelope("ErrorItemNotFound", "gone", request_id="r", client_request_id="c"))
    inner = body["error"]["innerError"]
    assert body["error"]["code"] == "ErrorItemNotFound"
    assert inner["request-id"] == "r" and inner["client-request-id"] == "c"
    assert len(inner["date"]) == 19 and "Z" not in inner["date"]


def test_a_row_gone_meanwhile_is_a_404_and_still_a_store_error() -> None:
    """A foreign key that fails because another request removed the row is the caller's
    404 (it was a 503 with the database's text); code that retries the database's errors
    still sees a StoreError."""
    error = e.ReferenceGoneError("The specified object was not found in the store.")
    assert status_and_code(error) == (404, "ErrorItemNotFound")
    assert isinstance(error, e.StoreError)
