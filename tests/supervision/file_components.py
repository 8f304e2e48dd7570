"""Components that tree-file tests name as ``file_components:...``."""

from __future__ import annotations

from typing import Any

import hedgerow as hr

echo = hr.Component(name="echo")
"""Serves ``<extra.prefix>.echo``, answering with its extra's greeting."""


@echo.on_join
def _register(session: Any, _details: Any) -> None:
    extra = session.config.extra or {}

    def answer(text: str) -> str:
        return f"{extra.get('greeting', 'hello')} {text}"

    session.register(answer, f"{extra['prefix']}.echo")


plain = hr.Component(name="plain")
"""Joins and does nothing: for settings checks."""
