"""The response-cache contract on every implementation: disk (diskcache) and Redis (the running server)."""

import pickle
import uuid

import pytest

from promptopt.cache import DiskResponseCache, NullCache, RedisResponseCache, get_cache

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["disk", pytest.param("redis", marks=pytest.mark.redis)])
def make_cache(request, tmp_path):
    made = []

    def make():
        if request.param == "disk":
            cache = DiskResponseCache(tmp_path / "cache")
        else:
            cache = RedisResponseCache(REDIS_URL, prefix=f"promptopt-test:{request.node.name}:{prefix}:")
        made.append(cache)
        return cache

    prefix = uuid.uuid4().hex
    yield make
    for cache in made:
        if isinstance(cache, RedisResponseCache):
            for key in cache._client.scan_iter(match=cache.prefix + "*"):
                cache._client.delete(key)
        cache.close()


def test_round_trip_and_miss(make_cache):
    cache = make_cache()
    value = {"text": "positive ünïcode", "prompt_tokens": 3, "nested": {"a": [1, None]}}
    assert cache.get("k1") is None
    cache.set("k1", value)
    assert cache.get("k1") == value


def test_a_second_handle_sees_what_the_first_wrote(make_cache):
    make_cache().set("k2", {"text": "x"})
    assert make_cache().get("k2") == {"text": "x"}


def test_pickled_handle_reopens_the_same_cache(make_cache):
    cache = make_cache()
    cache.set("k3", {"text": "y"})
    clone = pickle.loads(pickle.dumps(cache))  # how Ray workers receive it
    assert clone.get("k3") == {"text": "y"}
    clone.close()


def test_factory_picks_the_implementation(tmp_path):
    assert isinstance(get_cache(str(tmp_path / "c")), DiskResponseCache)
    assert isinstance(get_cache(REDIS_URL), RedisResponseCache)
    assert isinstance(get_cache(str(tmp_path / "c"), enabled=False), NullCache)
    assert "***" in RedisResponseCache("redis://:pw-secret@127.0.0.1:6379/0").describe()
