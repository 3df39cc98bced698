"""Client addresses behind trusted proxies, token buckets and stream slots."""

from __future__ import annotations

import pytest

from rat.config import ConfigError, load_settings
from rat.web.ratelimit import ClientAddress, StreamSlots, TokenBuckets, parse_networks


def _scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 5000), "headers": headers}


def test_forwarded_for_is_ignored_from_untrusted_peers() -> None:
    clients = ClientAddress(parse_networks("10.0.0.0/8"))
    assert clients.of(_scope("203.0.113.9", "1.2.3.4")) == "203.0.113.9"  # type: ignore[arg-type]
    assert ClientAddress([]).of(_scope("127.0.0.1", "1.2.3.4")) == "127.0.0.1"  # type: ignore[arg-type]


def test_forwarded_for_walks_back_over_trusted_hops_only() -> None:
    clients = ClientAddress(parse_networks("10.0.0.0/8, 192.168.1.1"))
    # The client forged "6.6.6.6"; the real client is the hop the first trusted proxy saw.
    scope = _scope("10.0.0.2", "6.6.6.6, 198.51.100.7, 192.168.1.1")
    assert clients.of(scope) == "198.51.100.7"  # type: ignore[arg-type]
    assert clients.of(_scope("10.0.0.2", "10.1.1.1")) == "10.0.0.2"  # type: ignore[arg-type]
    assert clients.of(_scope("10.0.0.2")) == "10.0.0.2"  # type: ignore[arg-type]


def test_bad_trusted_proxies_setting_names_the_key() -> None:
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_networks("10.0.0.0/8,not-an-ip")
    with pytest.raises(ConfigError, match="RAT_TRUSTED_PROXIES"):
        load_settings({"RAT_TRUSTED_PROXIES": "10.0.0.0/33"})


def test_token_bucket_burst_then_refill() -> None:
    now = [100.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    decisions = [buckets.take("a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    refused = decisions[-1]
    assert (refused.limit, refused.remaining, refused.retry_after) == (3, 0, 1)
    assert refused.reset_seconds == 2  # 3 tokens at 2/s
    assert buckets.take("b").allowed  # other clients have their own bucket
    now[0] += 0.5
    assert buckets.take("a").allowed
    assert not buckets.take("a").allowed


def test_stream_slots_per_client_and_total() -> None:
    slots = StreamSlots(per_client=2, total=3)
    assert slots.acquire("a")
    assert slots.acquire("a")
    assert not slots.acquire("a")
    assert slots.acquire("b")
    assert not slots.acquire("c")  # total reached
    slots.release("a")
    assert slots.acquire("c")
    assert slots.count == 3
