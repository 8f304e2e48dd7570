"""The WAMP frameworks a process can choose (txaio's names).

Apart from `hedgerow.transports._framework`, which imports asyncio and ssl, so
that a worker process checks the framework its config names without paying
for them when it hosts plain actors.
"""

from __future__ import annotations

__all__ = ["FRAMEWORKS"]

FRAMEWORKS = ("asyncio", "twisted")
"""The frameworks the WAMP transport runs on (txaio's names)."""
