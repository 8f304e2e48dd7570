"""Testing support: fault injection, a virtual clock with autojump, an event
recorder, a pytest plugin (registered as ``hedgerow``) and the chaos engine.

The ``hedgerow chaos`` command object is `hedgerow.testing._chaos.chaos`.
"""

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
