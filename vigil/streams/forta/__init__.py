"""Forta alerts: records, Local Mode webhook authentication and ingress, the API poller."""
