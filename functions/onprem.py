"""The on-premises AD agent as the service sees it: its verdicts (queue `<prefix>-onprem-results`) settle the reset
flows and self-service changes that wait for them, and the admin API lists the agents from their heartbeats (docs/onprem.md)."""

from __future__ import annotations

import logging

import azure.functions as func
from pydantic import ValidationError

from functions import api, composition
from functions.openapi_spec import Operation
from shared import queues
from shared.domain.access import Access
from shared.domain.onprem_jobs import JobResult
from shared.services.onprem.agents import AgentsView

bp = func.Blueprint()
log = logging.getLogger("sspr.onprem")

OPERATIONS = [
    Operation("get", "manage/onprem/agents", "The on-premises agents: version, last heartbeat, DCs, jobs", "onprem",
              "admin-read", responses={200: AgentsView},
              description="An agent is live while it beat within 90 s and reaches a domain controller; "
                          "holdsServiceKey says whether it can open what the service seals (SSPR_ONPREM_AGENT_PUBLIC_KEY)."),
]


@bp.queue_trigger(arg_name="message", queue_name=queues.trigger_queue(queues.ONPREM_RESULTS),
                  connection="AzureWebJobsStorage")
async def onprem_result(message: func.QueueMessage) -> None:
    try:
        result = JobResult.model_validate_json(message.get_body())
    except ValidationError:
        log.warning("an on-premises result that does not read as one was dropped (message %s)", message.id)
        return  # the agent's own message format is checked; a stranger's message changes nothing
    await composition.root.onprem_verdicts.settle(result)


@bp.route(route="manage/onprem/agents", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@api.endpoint
async def onprem_agents(req: func.HttpRequest) -> func.HttpResponse:
    await api.authenticate(req, Access.READ)
    return api.json_response((await composition.root.agents.view()).model_dump(mode="json"))
