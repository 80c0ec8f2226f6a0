"""Entra's own registration report (userRegistrationDetails) for the compliance sweep, one page at a time.

https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails documents
`$filter` and `$orderby` (and paging through `@odata.nextLink`) on this list, not `$select`: the page is asked
for without it and the caller reads the properties it needs. The reports API allows 5 requests / 10 s per app:
the caller paces the pages; a 429 is retried by the client.
"""

from __future__ import annotations

from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration

from shared.adapters.graph.client import GraphPart, next_link


class GraphReports(GraphPart):
    """The authentication-methods reports the compliance sweep reads."""

    async def user_registration_details_page(self, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """GET /reports/authenticationMethods/userRegistrationDetails?$top=999 (or the nextLink `cursor`): the
        page's user entries as JSON objects and the next page's link. GraphError 403 without Entra ID P1/P2."""
        from msgraph.generated.reports.authentication_methods.user_registration_details.user_registration_details_request_builder import (
            UserRegistrationDetailsRequestBuilder,
        )

        builder = self._sdk.reports.authentication_methods.user_registration_details
        if cursor is not None:
            info = builder.with_url(self._graph.check_link(cursor)).to_get_request_information()
        else:
            params = UserRegistrationDetailsRequestBuilder.UserRegistrationDetailsRequestBuilderGetQueryParameters(
                top=999
            )
            info = builder.to_get_request_information(RequestConfiguration(query_parameters=params))
        body = await self._graph.get_json(info)
        entries = [u for u in body.get("value") or [] if isinstance(u, dict) and isinstance(u.get("id"), str)]
        return entries, next_link(body)
