"""One translation of Azure Storage failures into the service's own error (security.md F6).

Every adapter wraps its storage calls in `with storage_errors("what it does"):` instead of catching `AzureError`
itself, so a failing Azurite or storage account always surfaces as `StorageUnavailable` with the same wording and
never leaks an SDK message (which may name the account or a key) into a log line or an answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import AzureError, HttpResponseError

from shared.errors import StorageUnavailable


def describe(error: AzureError) -> str:
    """The part of an SDK error that is safe to log: its type, and the HTTP status where there is one."""
    status = error.status_code if isinstance(error, HttpResponseError) else None
    return f"{type(error).__name__} {status}" if status else type(error).__name__


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Run the block; any `AzureError` it raises becomes `StorageUnavailable("<what> failed: <type>")`.

    Errors of our own (`StorageUnavailable`, `LostRace`, domain errors) pass through unchanged.
    """
    try:
        yield
    except AzureError as exc:
        raise StorageUnavailable(f"{what} failed: {describe(exc)}") from None
