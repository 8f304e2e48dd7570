"""`StopFlag`: a `threading.Event` that makes its Condition only when waited on."""

from __future__ import annotations

import threading

__all__ = ["StopFlag"]

_flag_lock = threading.Lock()


class StopFlag(threading.Event):
    """An event-loop actor's ``actor_stopped``: a `threading.Event` whose Condition
    is made by the first `wait`, so that an actor nobody waits for does not carry
    one (a Condition and its deque are about 1 KiB). `is_set` and the ``_flag``
    that tell, ask and the actor loop read are as cheap as in `threading.Event`."""

    _flag: bool

    def __init__(self) -> None:  # no super().__init__(): that makes the Condition
        self._flag = False
        self._cond: threading.Condition | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with _flag_lock:
            self._flag = True
            cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def clear(self) -> None:
        with _flag_lock:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        with _flag_lock:
            if self._flag:
                return True
            cond = self._cond
            if cond is None:
                cond = self._cond = threading.Condition(threading.Lock())
        with cond:
            return cond.wait_for(self.is_set, timeout)
