"""Running a service until it is told to stop."""

from __future__ import annotations

import asyncio
import signal


async def until_stopped() -> None:
    """Return at the first SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
