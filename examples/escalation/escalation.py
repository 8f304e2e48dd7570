"""Actors for the escalation trees: a remote service that is down for a while,
and a fetcher that crashes whenever the service fails it."""

from __future__ import annotations

import logging
from typing import Any

import hedgerow as hr

logger = logging.getLogger(__name__)


class ServiceUnavailableError(ConnectionError):
    """What the service answers while it is down."""


class RemoteService(hr.Actor):
    """Stands in for a remote API: its first `down_for` requests fail.

    Errors answering an ask go back to the asker; the service itself carries
    on (as in pykka), so its count survives the fetchers' crashes.
    """

    def __init__(self, down_for: int) -> None:
        super().__init__()
        self.down_for = down_for
        self.requests = 0

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("fetch", int(page)):
                self.requests += 1
                if self.requests <= self.down_for:
                    error = f"request {self.requests}: 503 Service Unavailable"
                    raise ServiceUnavailableError(error)
                return f"page {page}"
        return None


class Fetcher(hr.Actor):
    """Fetches `pages` pages, one per `interval`; it does not handle the service's
    errors, so each one crashes it and its supervisor decides what next."""

    def __init__(self, service: str, pages: int, interval: float) -> None:
        super().__init__()
        self.service_path = service
        self.pages = pages
        self.interval = interval
        self.page = 1

    def on_start(self) -> None:
        self.service = self.actor_lookup(self.service_path)
        self.actor_send_after(self.interval, "tick")

    def on_receive(self, message: Any) -> Any:
        if message != "tick":
            return None
        body = self.service.ask(("fetch", self.page), timeout=10)
        logger.info("fetched %s (fetcher incarnation %d)", body, self.actor_incarnation)
        if self.page == self.pages:
            raise hr.Shutdown(f"all {self.pages} pages fetched")
        self.page += 1
        self.actor_send_after(self.interval, "tick")
        return None
