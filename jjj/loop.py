"""The event loop the services run on.

``jjj node`` and ``jjj gateway`` (each of its workers) run on uvloop, libuv's event loop
for asyncio: aiohttp recommends it and grpc.aio runs on any asyncio loop. It moves the
sockets' work out of Python; a verification by code over HTTP, the gateway's cheapest
request, costs a fifth less CPU on it. ``JJJ_EVENT_LOOP=asyncio`` runs them on the
standard library's loop instead (to tell whether a problem is the loop's).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

from credit.errors import InvalidInput

log = structlog.get_logger("jjj")

LOOPS = ("uvloop", "asyncio")
_T = TypeVar("_T")


def chosen() -> str:
    """The loop ``JJJ_EVENT_LOOP`` asks for (uvloop when unset).

    Raises:
        InvalidInput: a loop other than uvloop or asyncio.
    """
    name = os.environ.get("JJJ_EVENT_LOOP", "").strip().lower() or LOOPS[0]
    if name not in LOOPS:
        raise InvalidInput.for_field("JJJ_EVENT_LOOP", f"must be one of {', '.join(LOOPS)}, not {name!r}")
    return name


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run a service's ``main`` to its end on a new loop of the chosen kind.

    Raises:
        InvalidInput: ``JJJ_EVENT_LOOP`` names no known loop (``main`` is not run).
        Whatever ``main`` raises.
    """
    try:
        name = chosen()
    except InvalidInput:
        main.close()
        raise
    log.debug("event_loop", loop=name)
    if name == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
