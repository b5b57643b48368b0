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
