"""The service's side of the on-premises AD agent: sending sealed jobs and waiting for AD's verdict (jobs.py), and
what the agents' heartbeats say about who can be served (agents.py). The agent itself is onprem_agent/."""
