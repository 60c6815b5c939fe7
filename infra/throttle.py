"""Per-address rate limits for public lookups (verification codes).

A code is 80 random bits, so guessing is hopeless; the limit keeps one address from
turning lookups into load on the registry and rows in the audit log. It lives in each
process: the limit is per address and per gateway process. Logins, where a shared count
matters, are throttled in the gateway's database.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

from credit.errors import TooManyAttempts


class AddressLimit:
    """At most ``limit`` events per address in ``window`` seconds; memory bounded by
    ``addresses`` (the least recently seen are forgotten first)."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.addresses = addresses
        self.clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, address: str) -> bool:
        """Count an event for ``address``: True when it is within the limit. A refused
        event is not counted, and the first refusal in a window says so (True → False)."""
        now = self.clock()
        times = self._seen.pop(address, None) or deque()
        while times and now - times[0] > self.window:
            times.popleft()
        allowed = len(times) < self.limit
        if allowed:
            times.append(now)
        self._seen[address] = times
        while len(self._seen) > self.addresses:
            self._seen.popitem(last=False)
        return allowed

    def check(self, address: str, what: str) -> None:
        """Raises: TooManyAttempts: ``address`` is over the limit for ``what``."""
        if not self.take(address):
            times = self._seen[address]
            wait = int(self.window - (self.clock() - times[0])) + 1 if times else int(self.window)
            raise TooManyAttempts(
                f"{what}过于频繁，请 {wait} 秒后再试 (too many lookups from here: retry in {wait} s)", wait
            )
