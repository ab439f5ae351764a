"""Response cache in front of every model call: disk by default, Redis when shared across machines."""

from promptopt.cache._base import CACHE_VERSION, NullCache, ResponseCache, cache_key
from promptopt.cache._entry import CacheEntry
from promptopt.cache._stores import DiskResponseCache, RedisResponseCache, get_cache

__all__ = [
    "CACHE_VERSION",
    "CacheEntry",
    "DiskResponseCache",
    "NullCache",
    "RedisResponseCache",
    "ResponseCache",
    "cache_key",
    "get_cache",
]
