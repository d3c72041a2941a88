"""The ticket systems revleak delivers to, by the connection's ``extra.provider``."""

from __future__ import annotations

from collections.abc import Callable

from revleak.tickets.base import Destination, Provider
from revleak.tickets.github import GitHubProvider
from revleak.tickets.jira import JiraProvider
from revleak.tickets.servicenow import ServiceNowProvider
from revleak.tickets.webhook import WebhookProvider

PROVIDERS: dict[str, type] = {
    "jira": JiraProvider,
    "servicenow": ServiceNowProvider,
    "github": GitHubProvider,
    "webhook": WebhookProvider,
}


def provider_for(dest: Destination, pacer: Callable[[], None] | None = None) -> Provider:
    """The provider named by ``dest.provider``; ``pacer`` runs before every write. A
    misconfigured destination raises ValueError with one line saying what to set."""
    factory = PROVIDERS.get(str(dest.provider or "").strip().lower())
    if factory is None:
        raise ValueError(f"unknown ticket provider {dest.provider!r}: extra.provider must be "
                         f"one of {', '.join(sorted(PROVIDERS))}")
    dest.flag("redact")  # every provider honours it (the relay renders redacted events)
    return factory(dest, pacer)
