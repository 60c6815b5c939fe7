"""Running a service until it is told to stop."""

from __future__ import annotations

import asyncio
import gc
import os
import signal


async def until_stopped(*, parent: int | None = None, every: float = 1.0) -> None:
    """Return at the first SIGINT or SIGTERM, or, for a worker process (``parent`` its
    parent's process id), once the parent is gone: a worker whose parent was killed
    must not go on serving unsupervised.

    Called once a service has started: what start-up allocated (modules, catalogues,
    caches, connections) lives as long as the process, so it is moved out of the
    collector's generations first (``gc.freeze``), and a full collection no longer walks
    it — a batch check's chunks allocate enough objects to set several off."""
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=every if parent is not None else None)
            return
        except TimeoutError:
            if os.getppid() != parent:
                return
