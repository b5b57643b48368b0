"""Run a read in a child process, so that a crash or hang inside a C library (libhdf5, netCDF-C) is contained.

No Python code can catch a segfault or an abort inside libhdf5, and a damaged file can make it
loop forever. `isolated(function, ...)` runs ``function`` in a child process (a fork of this one
where that is safe, else a new interpreter, which also works inside dask's daemonic workers) and
returns its result, re-raises its `UsidBridgeError`, or raises `IsolatedFailureError` when the
child dies or stays silent for `timeout` seconds. Progress reported in the child
(`usidbridge.progress`) reaches the parent's listener and counts as a sign of life, so a long
conversion that is moving is never cut off.

`Worker` is such a child kept for many calls; `probed` runs a walk of an HDF5 file's structure in
one long-lived child per process before the file is read in-process, which contains what
libhdf5 does on damaged metadata (a looping global heap, a crashing B-tree) for the cost of one
start-up per process (a few ms forked, 0.2-0.4 s as a new interpreter) and a metadata walk per file.

Defaults (see the command line): ``ub.read`` and ``convert`` probe HDF5 files (``isolate=False``,
``--no-isolate`` skip it); ``validate`` runs whole in a child, since it is meant for third-party
files; ``convert --isolate`` does too; ``batch`` converts every file in a worker child.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
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
PROBE_TIMEOUT = 20.0  # seconds without a heartbeat from a structure walk
_beat: Callable[[], None] = lambda: None  # in a child: tells the parent it is alive
_in_child = False  # this process is an isolation child: what it reads is contained already


def _send(channel: Any, message: tuple) -> None:
    pickle.dump(message, channel, protocol=pickle.HIGHEST_PROTOCOL)
    channel.flush()


def heartbeat() -> None:
    """From code running in a child: a sign of life that resets the parent's timeout (no-op elsewhere)."""
    _beat()


PR_SET_PDEATHSIG = 1  # Linux prctl: the signal a process gets when the thread that started it ends


def _die_with_parent(parent: int) -> None:
    """In a child: be killed when the parent process ends, however it ends (Linux). A child stuck in a
    C library's loop reads no more requests, so without this it would outlive a parent killed outright
    and spin for ever."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)


def _serve(requests: Any = None, channel: Any = None) -> None:
    """The child's side: run each (module, name, args, kwargs) read from `requests`, report on
    `channel`, until `requests` ends. A spawned child reads stdin and reports on the original stdout."""
    global _beat, _in_child
    _in_child = True
    if channel is None:
        _die_with_parent(os.getppid())
        requests, channel = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)  # whatever the libraries print must not mix with the messages
    _beat = lambda: _send(channel, ("alive",))  # noqa: E731
    while True:
        try:
            module, name, args, kwargs = pickle.load(requests)
        except EOFError:
            return
        try:
            function = getattr(importlib.import_module(module), name)
            with progress.reporting(lambda done, total: _send(channel, ("progress", done, total))):
                result = function(*args, **kwargs)
        except UsidBridgeError as error:
            _send(channel, ("error", error))
        except Exception as error:  # a bug in usidbridge: the parent reports it as such, with its type
            _send(channel, ("unexpected", f"{type(error).__name__}: {error}"))
        else:
            _send(channel, ("ok", result))


class _ForkedChild:
    """A forked copy of this process serving calls, behind the part of `subprocess.Popen` that
    `Worker` uses (stdin, stdout, poll, kill, wait).

    It starts in milliseconds, where a new interpreter takes 0.2-0.4 s of imports. Only safe where
    no other thread can hold a lock the child needs (`can_fork`). The child never returns into the
    caller's code and ends with ``os._exit``: no atexit handler runs, so it never flushes or closes
    HDF5 files the parent has open.
    """

    def __init__(self) -> None:
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the child
            try:
                _die_with_parent(parent)
                os.close(requests_write)
                os.close(replies_read)
                silent = os.open(os.devnull, os.O_WRONLY)
                os.dup2(silent, 1)  # what the libraries print goes nowhere, as for a spawned child
                os.dup2(silent, 2)
                faulthandler.disable()  # it writes to a stream of its own; the parent reports a crash
                _serve(os.fdopen(requests_read, "rb"), os.fdopen(replies_write, "wb"))
            finally:
                os._exit(0)
        os.close(requests_read)
        os.close(replies_write)
        self.stdin = os.fdopen(requests_write, "wb")
        self.stdout = os.fdopen(replies_read, "rb")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def can_fork() -> bool:
    """True where a forked child is safe: Linux (macOS's system libraries are not fork-safe), and
    this process runs one thread, so no lock (h5py's, the import lock) can be held by a thread the
    child lacks."""
    return sys.platform.startswith("linux") and threading.active_count() == 1


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"crashed ({signal.Signals(-code).name})"
        except ValueError:
            return f"crashed (signal {-code})"
    return f"stopped with exit code {code}"


class Worker:
    """A child Python process that runs calls one after another, paying its start-up (about 0.4 s of
    imports for a new interpreter, milliseconds for a fork) once; after a call it could not finish
    (a crash, a hang) it is dead: start a new one."""

    def __init__(self, fork: bool = False) -> None:
        """A new interpreter, or with `fork` (where `can_fork`) a forked copy of this process."""
        self.process: subprocess.Popen | _ForkedChild = _ForkedChild() if fork else subprocess.Popen(
            [sys.executable, "-c", "from usidbridge.isolation import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: queue.Queue = queue.Queue()
        self.listener = threading.Thread(target=self._listen, daemon=True)
        self.listener.start()

    def _listen(self) -> None:
        while True:
            try:
                self.messages.put(pickle.load(self.process.stdout))
            except (EOFError, pickle.UnpicklingError, OSError):
                self.messages.put(None)
                return

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, function: Callable[..., Any], *args: Any, path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)`` in the child; `path` is the file named when the child dies or hangs."""
        try:
            pickle.dump((function.__module__, function.__qualname__, args, kwargs), self.process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child is gone: its end of the message stream says how
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except queue.Empty:
                self.close()
                raise IsolatedFailureError(f"timed out: no progress for {timeout:g} s while reading it (a damaged file can make the HDF5 library loop); the child process was stopped", path) from None
            if message is None:
                code = self.process.wait()
                raise IsolatedFailureError(f"the reading process {_describe_exit(code)} inside a C library (HDF5, netCDF, a decoder); the file is likely damaged", path)
            kind, *payload = message
            if kind == "alive":
                continue
            if kind == "progress":
                progress.advance(*payload)
            elif kind == "ok":
                return payload[0]
            elif kind == "error":
                raise payload[0]
            else:
                raise RuntimeError(f"unexpected error in the isolated process: {payload[0]}")

    def close(self) -> None:
        """Stop the child (killed: between calls it is idle, and a stuck one answers nothing else)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.listener.join(timeout=10)  # it ends at the dead child's end of stream; a thread still reading at exit can abort the interpreter
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


_probe_worker: Worker | None = None
_probe_lock = threading.Lock()
_probed: dict[tuple, Any] = {}  # walks that passed, by function and file identity (oldest first)
PROBED_KEPT = 4096


def _stop_probe_worker() -> None:
    """At exit: stop the probe child, so that its listening thread ends before the interpreter
    finalises (a daemon thread still reading a pipe then can abort the process)."""
    if _probe_worker is not None:
        _probe_worker.close()


atexit.register(_stop_probe_worker)


def _identity(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """The file's device, inode, size and modification time: the same tuple, the same bytes."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def probed(function: Callable[..., Any], *args: Any, path: str | os.PathLike[str], timeout: float | None = None) -> Any:
    """``function(*args)`` in this process's long-lived probe child (started on first use, replaced
    after a failure): a walk of a file's structure before the file is read here, so that a crash or
    a hang inside a C library on that structure is an `IsolatedFailureError` naming the file.

    A file already walked by the same function, unchanged since (`_identity`), is not walked again:
    reading one file again and again in a notebook pays the walk once.
    """
    global _probe_worker
    if _in_child:  # already contained: a crash here is reported by the parent
        return function(*args)
    key = (function.__module__, function.__qualname__, args, _identity(path))
    with _probe_lock:
        if key[-1] is not None and key in _probed:
            return _probed[key]
        if _probe_worker is None or not _probe_worker.alive:
            _probe_worker = Worker(fork=can_fork())
        try:
            result = _probe_worker.call(function, *args, path=path, timeout=timeout or PROBE_TIMEOUT)
        except IsolatedFailureError:
            _probe_worker.close()
            _probe_worker = None
            raise
        if len(_probed) >= PROBED_KEPT:
            del _probed[next(iter(_probed))]
        _probed[key] = result
        return result


def isolated(function: Callable[..., Any], *args: Any, path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` run in a new child process (a fork where `can_fork`); `path` is
    the file named when the child dies or hangs. In an isolation child already (a batch worker, a
    ``convert --isolate``), it runs here: a crash or hang is the parent's to report, and a decoded map
    crosses one pipe, not two."""
    if _in_child:
        return function(*args, **kwargs)
    worker = Worker(fork=can_fork())
    try:
        return worker.call(function, *args, path=path, timeout=timeout, **kwargs)
    finally:
        worker.close()
