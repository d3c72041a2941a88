"""Fake Jira, ServiceNow, GitHub and webhook servers: real HTTP on 127.0.0.1, every request
checked against the vendor's published API description (``tests/specs``). See ``base`` for
the faults they inject."""

from tests.ticket_fakes.base import FakeServer, LoggedRequest
from tests.ticket_fakes.github import GitHubServer
from tests.ticket_fakes.jira import JiraServer
from tests.ticket_fakes.servicenow import ServiceNowServer
from tests.ticket_fakes.webhook import WebhookServer

__all__ = ["FakeServer", "GitHubServer", "JiraServer", "LoggedRequest", "ServiceNowServer",
           "WebhookServer"]
