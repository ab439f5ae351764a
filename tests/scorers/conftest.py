import asyncio

import pytest

from tests.scorers.helpers import build_one


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory):
    # The embedding scorer stages its tokenizer under the cache folder: keep the user's ~/.cache untouched.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture
def build():
    """build(spec_dict, backend=...) -> scorer; every scorer built is closed after the test."""
    built = []

    def make(data, **kwargs):
        scorer = build_one(data, **kwargs)
        built.append(scorer)
        return scorer

    yield make
    for scorer in built:
        asyncio.run(scorer.aclose())
