"""Progress of long copies: the block-copy loops report, whoever is listening (the command line) shows it.

Nothing is shown unless a listener is installed with `reporting`, so the library stays silent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

Listener = Callable[[int, int], None]  # (bytes done in this copy, bytes this copy will move)

_listener: ContextVar[Listener | None] = ContextVar("usidbridge_progress", default=None)


def advance(done: int, total: int) -> None:
    """Called by copy loops after each block."""
    listener = _listener.get()
    if listener is not None:
        listener(done, total)


@contextlib.contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    """Send the progress of every copy made inside the block to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


@contextlib.contextmanager
def dask_tasks() -> Iterator[None]:
    """Report dask computations run inside the block (writers that hand their data to dask: netCDF,
    HyperSpy) as finished tasks of all tasks, so that they show a percentage too."""
    listener = _listener.get()
    if listener is None:
        yield
        return
    from dask.callbacks import Callback

    def finished(_key: object, _result: object, _graph: object, state: dict, _worker: object) -> None:
        done = len(state["finished"])
        listener(done, done + sum(len(state[kind]) for kind in ("ready", "waiting", "running")))

    with Callback(posttask=finished):
        yield
