"""Pure limit-keeping: rates, connection counts, and waits after wrong passwords or tokens."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable


class TokenBucket:
    """Allows `rate` events a second on average and bursts of `burst`; rate 0 allows all."""

    __slots__ = ("rate", "burst", "clock", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, max(burst, 1.0), clock
        self.tokens = self.burst
        self.stamp = clock()

    def reserve(self) -> float:
        """Spend one token, now or ahead: the seconds until it is there (0: now). Tokens
        spent ahead are a debt the refill pays first, so frames that wait keep their order."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class ConnectionCounter:
    """Open connections per client address and in total, against their limits (0: none),
    and connections over a limit that wait to be told so, against `refusals`."""

    PER_ADDRESS = "per_address"
    TOTAL = "total"

    def __init__(self, per_address: int, total: int, refusals: int = 64) -> None:
        self.per_address, self.total, self.refusals = per_address, total, refusals
        self.by_address: dict[str, int] = {}
        self.count = 0
        self.refusing = 0

    def refuse_later(self) -> bool:
        """Count a connection over a limit that may wait to be told (True), unless
        `refusals` already wait (False: close it now, without an answer)."""
        if self.refusing >= self.refusals:
            return False
        self.refusing += 1
        return True

    def refused(self) -> None:
        """Forget a connection that `refuse_later` counted."""
        self.refusing -= 1

    def admit(self, address: str) -> str | None:
        """Count a new connection, or return which limit it would break (and count nothing)."""
        if self.total and self.count >= self.total:
            return self.TOTAL
        if self.per_address and self.by_address.get(address, 0) >= self.per_address:
            return self.PER_ADDRESS
        self.by_address[address] = self.by_address.get(address, 0) + 1
        self.count += 1
        return None

    def release(self, address: str) -> None:
        """Forget a connection that `admit` counted."""
        left = self.by_address.get(address, 0) - 1
        if left > 0:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)
        self.count -= 1


class FailedLogins:
    """Wrong passwords per client address. After `tries` in a row, the address must wait
    before its next password is even checked: `first` seconds, twice as long after each
    further wrong one, up to `cap`. A quiet `cap` after the wait clears it, and so does a
    right password for the name every wrong one was for (not one for another name: your
    own account does not wipe out guesses at someone else's). At most `keep` addresses are
    remembered (the oldest are forgotten first). A password is counted as wrong before it
    is checked (`failed`), and uncounted if it was right, so guesses sent all at once are
    held up too."""

    def __init__(self, tries: int = 3, first: float = 1.0, cap: float = 60.0, keep: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tries, self.first, self.cap, self.keep, self.clock = tries, first, cap, keep, clock
        # address -> (failures, until, the names they were for)
        self.by_address: dict[str, tuple[int, float, frozenset[str]]] = {}

    @staticmethod
    def too_many(what: str, wait: float, address: str) -> str:
        """What `address` is told when it must wait `wait` s after wrong `what` (passwords)."""
        return (f"Too many wrong {what} from {yours(address)}: wait {math.ceil(wait)} s before"
                " trying again.")

    def wait(self, address: str) -> float:
        """Seconds before a password from `address` may be checked (0: now)."""
        entry = self.by_address.get(address)
        return max(0.0, entry[1] - self.clock()) if entry else 0.0

    def failed(self, address: str, name: str = "") -> None:
        now = self.clock()
        count, until, names = self.by_address.pop(address, (0, now, frozenset()))
        if now > until + self.cap:  # quiet for long enough: start afresh
            count, names = 0, frozenset()
        count += 1
        delay = 0.0 if count < self.tries else min(self.cap, self.first * 2 ** (count - self.tries))
        self.by_address[address] = (count, now + delay, names | {name})
        while len(self.by_address) > self.keep:
            del self.by_address[next(iter(self.by_address))]

    def succeeded(self, address: str, name: str = "") -> None:
        entry = self.by_address.get(address)
        if entry is not None and entry[2] <= {name}:
            del self.by_address[address]


WRONG_TOKEN = "Wrong token."


class TokenGate:
    """The server's shared token, and the wrong ones given for it per client address: as
    with passwords (`FailedLogins`), three in a row make an address wait before its next
    token is even compared, so it cannot be guessed at the speed of handshakes."""

    def __init__(self, token: str, failures: FailedLogins | None = None) -> None:
        self.token = token
        self.failures = failures or FailedLogins()

    def refusal(self, given: str | None, address: str) -> str | None:
        """Why `given`, from `address`, does not open the door (None: it does)."""
        wait = self.failures.wait(address)
        if wait:
            return FailedLogins.too_many("tokens", wait, address)
        if token_matches(given, self.token):
            self.failures.succeeded(address)
            return None
        self.failures.failed(address)
        return WRONG_TOKEN


def yours(address: str) -> str:
    """A client address (admission.client_address) as its client is told of it: an IPv6
    client is counted by its network, which others may share."""
    return f"your network ({address})" if address.endswith("/64") else "your address"


def token_matches(given: str | None, expected: str) -> bool:
    """Compare a presented token with the server's in constant time."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                                     expected.encode("utf-8", "surrogatepass"))
