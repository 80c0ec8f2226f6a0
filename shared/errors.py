"""Every error the service raises on purpose, and the one place that maps each to an HTTP problem.

    SsprError                      500  urn:sspr:problem:internal
    +-- DependencyUnavailable      503  urn:sspr:problem:dependency-unavailable
        +-- StorageUnavailable     503  (Azure Storage unreachable, timed out or refusing)
        +-- GraphUnavailable       503  (Microsoft Graph unreachable, throttled past our patience, 5xx)
    +-- GraphError                 502  urn:sspr:problem:directory-error (Graph answered 4xx we did not expect)

Messages are for logs and never carry secrets; responses carry only `type`, `title` and `status`
(security.md C4).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem: a stable `type` and a title a person can read."""

    type: str
    title: str
    status: int


class SsprError(Exception):
    problem = Problem("urn:sspr:problem:internal", "Something went wrong on our side. Try again later.", 500)


class DependencyUnavailable(SsprError):
    problem = Problem(
        "urn:sspr:problem:dependency-unavailable",
        "The service cannot reach what it depends on right now. Try again in a few minutes.",
        503,
    )


class StorageUnavailable(DependencyUnavailable):
    """Azure Storage did not answer, or answered with a server error."""


class GraphUnavailable(DependencyUnavailable):
    """Microsoft Graph did not answer in time, or kept answering 429/5xx."""


class GraphError(SsprError):
    """Microsoft Graph refused a request with an error code we do not handle as a domain outcome."""

    problem = Problem("urn:sspr:problem:directory-error", "The directory refused the request.", 502)

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"Graph answered {status} {code}")
        self.status = status
        self.code = code
