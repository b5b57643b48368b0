"""Run a read in a child process, so that a crash or hang inside a C library (libhdf5, netCDF-C) is contained.

No Python code can catch a segfault or an abort inside libhdf5, and a damaged file can make it
loop forever. `isolated(function, ...)` runs ``function`` in a fresh Python process (a plain
subprocess, so it also works inside dask's daemonic workers) and returns its result, re-raises its
`UsidBridgeError`, or raises `IsolatedFailureError` when the child dies or stays silent for
`timeout` seconds. Progress reported in the child (`usidbridge.progress`) reaches the parent's
listener and counts as a sign of life, so a long conversion that is moving is never cut off.

Defaults (see the command line): ``validate`` isolates, since it is meant for third-party files;
``convert`` isolates with ``--isolate``; ``batch`` always isolates every file.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import progress
from .errors import IsolatedFailureError, UsidBridgeError

DEFAULT_TIMEOUT = 120.0


def _send(channel: Any, message: tuple) -> None:
    pickle.dump(message, channel, protocol=pickle.HIGHEST_PROTOCOL)
    channel.flush()


def _child() -> None:
    """The child's side: read (module, name, args, kwargs) from stdin, report on the original stdout."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the libraries print must not mix with the messages
    module, name, args, kwargs = pickle.load(sys.stdin.buffer)
    function = getattr(importlib.import_module(module), name)
    try:
        with progress.reporting(lambda done, total: _send(channel, ("progress", done, total))):
            result = function(*args, **kwargs)
    except UsidBridgeError as error:
        _send(channel, ("error", error))
    except Exception as error:  # a bug in usidbridge: the parent reports it as such, with its type
        _send(channel, ("unexpected", f"{type(error).__name__}: {error}"))
    else:
        _send(channel, ("ok", result))


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"stopped with exit code {code}"


def isolated(function: Callable[..., Any], *args: Any, path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` run in a child process; `path` is the file named when the child dies or hangs."""
    child = subprocess.Popen(
        [sys.executable, "-c", "from usidbridge.isolation import _child; _child()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    messages: queue.Queue = queue.Queue()

    def listen() -> None:
        while True:
            try:
                messages.put(pickle.load(child.stdout))
            except (EOFError, pickle.UnpicklingError, OSError):
                messages.put(None)
                return

    threading.Thread(target=listen, daemon=True).start()
    try:
        pickle.dump((function.__module__, function.__qualname__, args, kwargs), child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.close()
    except BrokenPipeError:
        pass
    try:
        while True:
            try:
                message = messages.get(timeout=timeout)
            except queue.Empty:
                child.kill()
                raise IsolatedFailureError(f"timed out: no progress for {timeout:g} s while reading it (a damaged file can make the HDF5 library loop); the child process was stopped", path) from None
            if message is None:
                code = child.wait()
                raise IsolatedFailureError(f"the reading process {_describe_exit(code)} inside a C library (HDF5, netCDF); the file is likely damaged", path)
            kind, *payload = message
            if kind == "progress":
                progress.advance(*payload)
            elif kind == "ok":
                return payload[0]
            elif kind == "error":
                raise payload[0]
            else:
                raise RuntimeError(f"unexpected error in the isolated process: {payload[0]}")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
