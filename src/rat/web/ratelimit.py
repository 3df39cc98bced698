"""Per-client limits: the client address behind trusted proxies, token buckets, SSE stream slots."""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from litestar.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Idle buckets are swept once the table holds this many clients, so a scan of spoofed source
# addresses cannot grow memory without bound.
_SWEEP_AT = 10_000


def parse_networks(text: str) -> list[IPNetwork]:
    """`RAT_TRUSTED_PROXIES`: comma-separated CIDRs or addresses; ValueError names a bad one."""
    out: list[IPNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR") from None
    return out


class ClientAddress:
    """The client IP: the peer, or the X-Forwarded-For hop just before the trusted proxies."""

    def __init__(self, trusted: list[IPNetwork]) -> None:
        self.trusted = trusted

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def of(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        if not self.trusted or not self.is_trusted(peer):
            return peer
        forwarded = [h for k, v in scope.get("headers", []) if k == b"x-forwarded-for"
                     for h in v.decode("latin-1").split(",")]
        # Walk from the nearest hop back; the first address no trusted proxy vouches for is the
        # client. Everything further left was written by the client and may be forged.
        for hop in reversed([h.strip() for h in forwarded if h.strip()]):
            if not self.is_trusted(hop):
                return hop
        return peer


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int


class TokenBuckets:
    """`rate` tokens per second up to `burst`, one bucket per key."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> Decision:
        now = self.clock()
        tokens, last = self.buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self.buckets) >= _SWEEP_AT and key not in self.buckets:
            self._sweep(now)
        self.buckets[key] = (tokens, now)
        reset = math.ceil((self.burst - tokens) / self.rate)
        retry = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
        return Decision(allowed, self.burst, int(tokens), reset, retry)

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < full_after}


class Rule:
    """A bucket family for requests whose path (and method) match."""

    def __init__(self, name: str, buckets: TokenBuckets, path: str, *, exact: bool,
                 method: str | None = None) -> None:
        self.name = name
        self.buckets = buckets
        self.path = path
        self.exact = exact
        self.method = method

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return path == self.path if self.exact else path.startswith(self.path)


class StreamSlots:
    """Concurrent long-lived streams (SSE): at most `per_client` per address, `total` overall."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self.active: dict[str, int] = {}
        self.count = 0

    def acquire(self, client: str) -> bool:
        held = self.active.get(client, 0)
        if held >= self.per_client or self.count >= self.total:
            return False
        self.active[client] = held + 1
        self.count += 1
        return True

    def release(self, client: str) -> None:
        held = self.active.get(client, 0) - 1
        if held > 0:
            self.active[client] = held
        else:
            self.active.pop(client, None)
        self.count -= 1
