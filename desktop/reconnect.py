"""When to try again after the connection drops: exponential backoff with full jitter, and which drops are final.

Pure policy, no I/O and no clocks: `LiveSession` asks `ReconnectPolicy.next_delay()` how long to wait before
the next attempt, tells it `succeeded()` when a connection opens, and asks `is_permanent()` whether a failed
attempt means that trying again cannot help (a refused API key, a bad URL).

The first attempt after a drop waits only `first_delay_s` (± jitter), so a blip costs well under a second;
each further failed attempt doubles the ceiling up to `max_delay_s`. The counter restarts once a connection
opens. Jitter spreads clients that lost the same server at the same moment so they do not return in lockstep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: Words in a connect error that mean trying again cannot work without the user changing something.
#: A close after the socket was open is never final by itself: a session that expired or a server that
#: restarted comes back on the next attempt, and a key revoked meanwhile fails that attempt with HTTP 401.
PERMANENT_ERROR_WORDS = ("refused the API key", "Not a WebSocket URL", "invalid_api_key", "HTTP 401", "HTTP 403", "HTTP 404")


@dataclass
class ReconnectPolicy:
    first_delay_s: float = 0.2
    max_delay_s: float = 10.0
    multiplier: float = 2.0
    #: Fraction of each delay that is random: 0.5 means a delay d is drawn from [d/2, d].
    jitter: float = 0.5
    #: Give up after this many failed attempts in a row (None: keep trying until the user cancels).
    max_attempts: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = 0

    def ceiling(self, attempt: int) -> float:
        """The largest delay before attempt number `attempt` (0-based), before jitter."""
        return min(self.max_delay_s, self.first_delay_s * self.multiplier ** max(0, attempt))

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or None when the policy gives up."""
        if self.max_attempts is not None and self.attempts >= self.max_attempts:
            return None
        top = self.ceiling(self.attempts)
        self.attempts += 1
        return top * (1.0 - self.jitter) + top * self.jitter * self.rng.random()

    def succeeded(self) -> None:
        self.attempts = 0

    def reset(self) -> None:
        self.attempts = 0

    @staticmethod
    def is_permanent(connect_error: str) -> bool:
        """True when a failed connect attempt says trying again with the same settings cannot work."""
        return any(word in connect_error for word in PERMANENT_ERROR_WORDS)
