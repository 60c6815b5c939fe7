"""Several worker processes of one service on the same ports.

An asyncio service uses one core. To use more, a parent process starts several workers,
each a whole copy of the service, and every worker listens on the same ports
(``SO_REUSEPORT``: the kernel spreads new connections over the listening sockets).

Before any worker starts, the parent makes sure the ports are free (:func:`reserve`): a
port another program listens on is refused with a message instead of being shared.
It then holds each port with a socket of its own that never listens — it takes no
connection, but keeps any other program from binding the port while workers come and
go — and resolves a port 0 to the one the system picked, so that all workers share it.

:class:`WorkerPool` starts the workers (fresh interpreters, ``spawn``: nothing of the
parent's state is inherited), waits until each says it serves, and then supervises them:

- SIGTERM or SIGINT: every worker is asked to stop (SIGTERM) and given ``grace``
  seconds, then killed; the parent exits 0;
- SIGHUP: the workers are replaced one at a time, each new one serving before the old
  one stops (to read renewed certificates without refusing a connection);
- a worker that exits on its own is replaced, at once the first time, then after a
  pause that doubles while replacements keep dying young;
- a worker whose parent is gone (killed) stops by itself (see
  :func:`infra.lifecycle.until_stopped`).

A worker that cannot start (a bad setting, an unreachable database) stops the whole
start: the parent stops the others and exits 1 with that worker's reason.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger("jjj.workers")

YOUNG = 10.0  # seconds: a worker that dies younger than this is replaced after a growing pause
MAX_PAUSE = 30.0


class PortTaken(OSError):
    """A port the service should listen on is in use, or the address is not this host's."""


@dataclass
class Reservation:
    """Ports checked free and held (see the module's description)."""

    addresses: list[str]  # HOST:PORT, in the order asked, port 0 resolved
    sockets: list[socket.socket] = field(default_factory=list)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def reserve(listeners: Sequence[tuple[str, str]]) -> Reservation:
    """Check that each ``(what, HOST:PORT)`` can be listened on, and hold them.

    Raises:
        PortTaken: a port is in use (``what`` names it in the message) or the host is
            not an address of this machine.
    """
    reservation = Reservation([])
    try:
        for what, address in listeners:
            host, _, port_text = address.rpartition(":")
            try:
                family, _, _, _, where = socket.getaddrinfo(
                    host.strip("[]") or None, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
                )[0]
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    # As a listener binds: free unless a socket listens on it (connections
                    # left in TIME_WAIT by an earlier run do not count).
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind(where)
                    port = probe.getsockname()[1]
                held = socket.socket(family, socket.SOCK_STREAM)
                reservation.sockets.append(held)
                held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                held.bind((where[0], port, *where[2:]))
            except (OSError, ValueError) as exc:
                reason = "the port is in use" if isinstance(exc, OSError) and exc.errno == 98 else str(exc)
                raise PortTaken(f"cannot listen on {address} for {what}: {reason}") from exc
            reservation.addresses.append(f"{host}:{port}")
    except BaseException:
        reservation.close()
        raise
    return reservation


class WorkerLink:
    """A worker's line to its parent: given to the worker's target as its first argument."""

    def __init__(self, number: int, parent: int, events: Queue[tuple[str, int, str]]) -> None:
        self.number = number
        self.parent = parent  # the parent's process id: a worker stops when it is gone
        self._events = events

    def ready(self, detail: str = "") -> None:
        """Say that this worker serves (``detail``: where, for the parent to print)."""
        self._events.put(("ready", os.getpid(), detail))

    def failed(self, reason: str) -> None:
        """Say why this worker could not start."""
        self._events.put(("failed", os.getpid(), reason))


def _worker_main(
    target: Callable[..., None], args: tuple[Any, ...], number: int, parent: int, events: Queue[tuple[str, int, str]]
) -> None:
    link = WorkerLink(number, parent, events)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the parent's signal, sent to the process group by terminals
    try:
        target(link, *args)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        log.exception("worker_failed", worker=number)
        link.failed(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        sys.exit(1)


@dataclass
class _Slot:
    number: int
    process: SpawnProcess | None = None
    started: float = 0.0
    ready: bool = False
    pause: float = 0.0  # before the next replacement, when it keeps dying young
    due: float = 0.0  # when to start the replacement


class WorkerPool:
    """``count`` workers, each running ``target(link, *args)`` in a process of its own
    (``target`` and ``args`` must pickle; ``target`` calls ``link.ready()`` once it serves
    and returns when told to stop by SIGTERM). ``on_exit`` is told each worker's process
    id once it has exited. See the module's description."""

    def __init__(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        *,
        count: int,
        name: str = "worker",
        grace: float = 25.0,
        start_timeout: float = 120.0,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("a pool needs at least one worker")
        self.target = target
        self.args = args
        self.count = count
        self.name = name
        self.grace = grace
        self.start_timeout = start_timeout
        self.on_exit = on_exit
        self._context = multiprocessing.get_context("spawn")
        self._events: Queue[tuple[str, int, str]] = self._context.Queue()
        self._slots = [_Slot(n) for n in range(1, count + 1)]
        self._stopping = False
        self._reloading = False
        self.detail = ""  # what the first worker said when ready

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers running now."""
        return [slot.process.pid for slot in self._slots if slot.process is not None and slot.process.pid is not None]

    def start(self) -> None:
        """Start every worker and wait until each serves.

        Raises:
            RuntimeError: a worker could not start (its reason in the message) or did not
                say it serves within ``start_timeout`` seconds; the others are stopped.
        """
        for slot in self._slots:
            self._spawn(slot)
        try:
            self._await_ready(self._slots)
        except BaseException:
            self.stop()
            raise

    def run(self, *, announce: Callable[[WorkerPool], None] | None = None) -> int:
        """Start the workers, ``announce`` them, and supervise them until SIGTERM or
        SIGINT; then stop them. The exit status: 0.

        Raises:
            RuntimeError: the workers could not start (see :meth:`start`).
        """
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            self.start()
            if announce is not None:
                announce(self)
            while not self._stopping:
                self._supervise()
            return 0
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self._reloading = True
        else:
            self._stopping = True

    def _spawn(self, slot: _Slot) -> None:
        process = self._context.Process(
            target=_worker_main,
            args=(self.target, self.args, slot.number, os.getpid(), self._events),
            name=f"{self.name}-{slot.number}",
        )
        process.start()
        slot.process, slot.started, slot.ready = process, time.monotonic(), False
        log.info("worker_started", worker=slot.number, pid=process.pid)

    def _slot_of(self, pid: int) -> _Slot | None:
        return next((slot for slot in self._slots if slot.process is not None and slot.process.pid == pid), None)

    def _await_ready(self, slots: Sequence[_Slot]) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not all(slot.ready for slot in slots):
            if self._stopping:
                raise RuntimeError("stopped while the workers were starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start within {self.start_timeout:g} s")
            self._take_events(timeout=0.2)
            for slot in slots:
                process = slot.process
                if not slot.ready and process is not None and process.exitcode is not None:
                    raise RuntimeError(f"worker {slot.number} exited with status {process.exitcode} as it started")

    def _take_events(self, *, timeout: float) -> None:
        try:
            kind, pid, detail = self._events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            slot = self._slot_of(pid)
            if kind == "failed":
                raise RuntimeError(detail)
            if slot is not None:
                slot.ready = True
                self.detail = self.detail or detail
                log.info("worker_ready", worker=slot.number, pid=pid)
            try:
                kind, pid, detail = self._events.get_nowait()
            except queue.Empty:
                return

    def _supervise(self) -> None:
        try:
            self._take_events(timeout=0.5)
        except RuntimeError as exc:  # a replacement could not start: it is replaced again later
            log.error("worker_failed", reason=str(exc))
        if self._reloading:
            self._reloading = False
            self._reload()
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if process is not None and process.exitcode is not None:
                self._exited(slot, process)
                lived = now - slot.started
                if lived >= YOUNG:
                    slot.pause, slot.due = 0.0, now
                else:  # replaced at once the first time, then after 1, 2, 4 … seconds
                    slot.due = now + slot.pause
                    slot.pause = min(MAX_PAUSE, max(1.0, slot.pause * 2))
                slot.process = None
                log.warning("worker_exited", worker=slot.number, status=process.exitcode, lived=round(lived, 1))
            if slot.process is None and now >= slot.due and not self._stopping:
                self._spawn(slot)

    def _exited(self, slot: _Slot, process: SpawnProcess) -> None:
        process.join(0)
        if self.on_exit is not None and process.pid is not None:
            self.on_exit(process.pid)

    def _reload(self) -> None:
        """Replace the workers one at a time, each new one serving before the old one stops."""
        log.info("workers_reloading", workers=self.count)
        for slot in self._slots:
            old = slot.process
            fresh = _Slot(slot.number)
            self._spawn(fresh)
            self._slots.append(fresh)  # its events are taken while it starts
            try:
                self._await_ready([fresh])
            except RuntimeError as exc:
                log.error("worker_reload_failed", worker=slot.number, reason=str(exc))
                self._halt([fresh])
                return
            finally:
                self._slots.remove(fresh)
            slot.process, slot.started, slot.ready = fresh.process, fresh.started, True
            if old is not None:
                self._halt_process(old)

    def stop(self) -> None:
        """Ask every worker to stop, wait up to ``grace`` seconds, kill those left."""
        self._stopping = True
        self._halt(self._slots)

    def _halt(self, slots: Sequence[_Slot]) -> None:
        running = [slot.process for slot in slots if slot.process is not None]
        for process in running:
            if process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + self.grace
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                log.warning("worker_killed", pid=process.pid, grace=self.grace)
                process.kill()
                process.join(5)
            if self.on_exit is not None and process.pid is not None:
                self.on_exit(process.pid)
        for slot in slots:
            slot.process = None

    def _halt_process(self, process: SpawnProcess) -> None:
        self._halt([_Slot(0, process)])
