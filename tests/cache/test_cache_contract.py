"""The response-cache contract on every implementation: disk (diskcache) and Redis (the running server)."""

import pickle
import uuid

import pytest

from promptopt.cache import CacheEntry, DiskResponseCache, NullCache, RedisResponseCache, get_cache
from promptopt.models._base import ModelResponse

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


def test_an_entry_keeps_what_its_call_cost_and_took(make_cache):
    response = ModelResponse(text="positive", prompt_tokens=5, completion_tokens=1, cost_usd=0.003, latency_s=0.4)
    make_cache().set("k4", CacheEntry.of(response).dump())
    entry = CacheEntry.load(make_cache().get("k4"))
    assert entry == CacheEntry.of(response) and (entry.cost_usd, entry.latency_s) == (0.003, 0.4)


def test_an_entry_keeps_its_stored_form_and_one_without_figures_loads():
    response = ModelResponse(text="positive", prompt_tokens=5, completion_tokens=1, cost_usd=0.003, latency_s=0.4)
    assert CacheEntry.of(response).dump() == response.model_dump(mode="json")  # what every version reads
    old = CacheEntry.load({"text": "positive", "prompt_tokens": 5, "completion_tokens": 1})
    assert (old.cost_usd, old.latency_s, old.response.text) == (None, None, "positive")  # unknown, not 0


def test_factory_picks_the_implementation(tmp_path):
    assert isinstance(get_cache(str(tmp_path / "c")), DiskResponseCache)
    assert isinstance(get_cache(REDIS_URL), RedisResponseCache)
    assert isinstance(get_cache(str(tmp_path / "c"), enabled=False), NullCache)
    assert "***" in RedisResponseCache("redis://:pw-secret@127.0.0.1:6379/0").describe()
