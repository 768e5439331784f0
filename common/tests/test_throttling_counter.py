"""The throttles' counter (common/throttling.py) on the real Redis: exact when processes race,
one integer with a TTL per client, a window that rolls over, one command per count, and the
same windows on a local-memory cache."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from common.throttling import FailureLimit, count_hit, redis_client

ROOT = Path(__file__).resolve().parents[2]


def fresh_key() -> str:
    return f"throttle_test_{uuid.uuid4().hex}"


def raw():
    client = redis_client(caches["throttles"])
    assert client is not None, "the throttles cache is Redis whenever REDIS_URL is set"
    return client


# A process of its own: waits for the go file, then counts `hits` requests against one key and
# prints the counts it got.
CHILD = """
import os, sys, time
import django
django.setup()
from django.core.cache import caches
from common.throttling import count_hit
key, hits, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.005)
cache = caches["throttles"]
print(" ".join(str(count_hit(cache, key, 60).count) for _ in range(hits)))
"""


@pytest.mark.redis
def test_processes_racing_on_one_client_get_exactly_the_limit(tmp_path):
    key, limit, hits, processes = fresh_key(), 50, 120, 3
    go = tmp_path / "go"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, key, str(hits), str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    time.sleep(0.5)  # let them start importing; the go file releases them together
    go.touch()
    counts: list[int] = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        counts += [int(count) for count in out.split()]
    # Every increment is atomic: each count is handed out once, none lost...
    assert sorted(counts) == list(range(1, hits * processes + 1))
    # ...so exactly `limit` requests are allowed across the processes.
    assert sum(count <= limit for count in counts) == limit


@pytest.mark.redis
def test_a_clients_counter_is_one_integer_with_a_ttl():
    cache, key = caches["throttles"], fresh_key()
    for _ in range(500):
        count_hit(cache, key, 60)
    full_key = cache.make_key(key)
    client = raw()
    assert client.type(full_key) == b"string"
    assert client.object("encoding", full_key) == b"int"  # a number, not a list of requests
    assert int(client.get(full_key)) == 500
    assert 0 < client.pttl(full_key) <= 60_000
    assert client.keys(f"{full_key}*") == [full_key.encode()]  # nothing else for this client
    assert cache.get(key) == 500  # the cache API reads the same key (prefix and version)


@pytest.mark.redis
def test_the_window_opens_with_the_first_request_and_is_never_extended():
    cache, key = caches["throttles"], fresh_key()
    first = count_hit(cache, key, 60)
    assert (first.count, first.retry_after) == (1, 60)
    raw().pexpire(cache.make_key(key), 5_000)  # as if 55 seconds had gone by
    later = count_hit(cache, key, 60)
    assert later.count == 2
    assert later.retry_after <= 5  # the rest of the same window, not a new one


@pytest.mark.redis
def test_the_window_rolls_over():
    cache, key = caches["throttles"], fresh_key()
    hits = [count_hit(cache, key, 1) for _ in range(3)]
    assert [hit.count for hit in hits] == [1, 2, 3]
    time.sleep(hits[-1].rest + 0.05)  # the key's TTL runs out in Redis
    assert raw().exists(cache.make_key(key)) == 0
    after = count_hit(cache, key, 1)
    assert after.count == 1
    assert 0 < raw().pttl(cache.make_key(key)) <= 1000


@pytest.mark.redis
def test_a_counter_left_without_a_ttl_gets_one():
    cache, key = caches["throttles"], fresh_key()
    raw().set(cache.make_key(key), 7)
    assert count_hit(cache, key, 60).count == 8
    assert 0 < raw().pttl(cache.make_key(key)) <= 60_000


@pytest.mark.redis
def test_one_count_is_one_command_to_redis():
    """The increment and the TTL travel as one EVALSHA (its script's INCR and PTTL run inside
    Redis): one round trip. Watched with MONITOR, on the throttles' database only."""
    cache, key = caches["throttles"], fresh_key()
    count_hit(cache, fresh_key(), 60)  # the script is loaded from here on
    client = raw()
    db = client.connection_pool.connection_kwargs["db"]
    marker = f"end-{uuid.uuid4().hex}"
    with client.monitor() as monitor:
        for _ in range(3):
            count_hit(cache, key, 60)
        client.echo(marker)
        seen: list[dict[str, str]] = []
        while True:
            command = monitor.next_command()
            if command["db"] != db:
                continue  # other databases of this server (other tests, other projects)
            if marker in command["command"]:
                break
            seen.append(command)
    full_key = cache.make_key(key)
    sent = [c["command"].split()[0] for c in seen if c["client_type"] != "lua"]
    in_script = [c["command"].split()[0] for c in seen if c["client_type"] == "lua"]
    assert [c for c in sent if c != "SELECT"] == ["EVALSHA"] * 3
    assert all(full_key in c["command"] for c in seen if c["command"].split()[0] != "SELECT")
    # Inside Redis: the TTL is set once, when the key is new, and never touched again.
    assert in_script == ["INCR", "PTTL", "PEXPIRE", "INCR", "PTTL", "INCR", "PTTL"]


def test_a_local_memory_cache_counts_the_same_windows():
    cache = LocMemCache(f"throttles-{uuid.uuid4().hex}", {})
    key = fresh_key()
    hits = [count_hit(cache, key, 60) for _ in range(3)]
    assert [hit.count for hit in hits] == [1, 2, 3]
    assert all(55 < hit.rest <= 60 for hit in hits)
    assert hits[0].rest >= hits[-1].rest  # the same window, running down
    short = fresh_key()
    first = count_hit(cache, short, 1)
    time.sleep(first.rest + 0.05)
    assert count_hit(cache, short, 1).count == 1


class _Limit(FailureLimit):
    scope = "test_failures"

    def begin(self, key: str):
        return self._begin([(key, 2, 60)])


@pytest.mark.redis
def test_failure_limits_count_in_the_same_counter_and_give_slots_back():
    from rest_framework.exceptions import Throttled

    cache, key = caches["throttles"], fresh_key()
    limit = _Limit()
    limit.begin(key).succeeded()  # given back
    limit.begin(key).failed()
    limit.begin(key).failed()
    with pytest.raises(Throttled) as refused:
        limit.begin(key)
    assert 0 < getattr(refused.value, "wait", 0) <= 60
    full_key = cache.make_key(key)
    assert int(raw().get(full_key)) == 2  # the refusal and the success count nothing
    assert 0 < raw().pttl(full_key) <= 60_000
