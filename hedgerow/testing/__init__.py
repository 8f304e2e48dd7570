"""Testing support: fault injection, a virtual clock with autojump, an event
recorder, a pytest plugin (registered as ``hedgerow``) and the chaos engine.

The ``hedgerow chaos`` command object is `hedgerow.cli._chaos.chaos`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hedgerow._lazy import lazy_exports

if TYPE_CHECKING:
    from hedgerow.testing._chaos import (
        ChaosKind,
        ChaosOptions,
        ChaosReport,
        PlannedFault,
        plan_faults,
        run_chaos,
    )
    from hedgerow.testing._clock import VirtualClock
    from hedgerow.testing._factory import TreeFactory
    from hedgerow.testing._faults import (
        Fault,
        FaultError,
        FaultKind,
        FaultRecord,
        Faults,
        InjectedFault,
        MessageCounts,
    )
    from hedgerow.testing._recorder import EventRecorder, capture_events

__all__ = [
    "ChaosKind",
    "ChaosOptions",
    "ChaosReport",
    "EventRecorder",
    "Fault",
    "FaultError",
    "FaultKind",
    "FaultRecord",
    "Faults",
    "InjectedFault",
    "MessageCounts",
    "PlannedFault",
    "TreeFactory",
    "VirtualClock",
    "capture_events",
    "plan_faults",
    "run_chaos",
]

# Each public name's home, imported on first use (PEP 562), so that importing the
# package stays cheap (tests/test_imports.py keeps it so).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ChaosKind": "hedgerow.testing._chaos",
        "ChaosOptions": "hedgerow.testing._chaos",
        "ChaosReport": "hedgerow.testing._chaos",
        "PlannedFault": "hedgerow.testing._chaos",
        "plan_faults": "hedgerow.testing._chaos",
        "run_chaos": "hedgerow.testing._chaos",
        "VirtualClock": "hedgerow.testing._clock",
        "TreeFactory": "hedgerow.testing._factory",
        "Fault": "hedgerow.testing._faults",
        "FaultError": "hedgerow.testing._faults",
        "FaultKind": "hedgerow.testing._faults",
        "FaultRecord": "hedgerow.testing._faults",
        "Faults": "hedgerow.testing._faults",
        "InjectedFault": "hedgerow.testing._faults",
        "MessageCounts": "hedgerow.testing._faults",
        "EventRecorder": "hedgerow.testing._recorder",
        "capture_events": "hedgerow.testing._recorder",
    },
)
del TYPE_CHECKING, lazy_exports  # keep the namespace to the public names
