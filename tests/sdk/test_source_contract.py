"""The PromptSource contract, run against every implementation: the server (HttpSource) and the store
(StoreSource)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from promptopt.errors import NotFound
from promptopt.sdk import HttpSource, PromptRef, PromptSource, StoreSource
from tests.server.helpers import Served, served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("sources")) as running:
        yield running


@pytest.fixture(params=["http", "store"])
def source(request: pytest.FixtureRequest, server: Served) -> Iterator[PromptSource]:
    made = HttpSource(server.url) if request.param == "http" else StoreSource(server.store.url)
    yield made
    made.close()


def test_fetch_by_label_and_version(source: PromptSource, server: Served) -> None:
    by_label = source.fetch(PromptRef.of("support-triage", label="staging"))
    pinned = source.fetch(PromptRef.of("support-triage", version=2))
    expected = server.registry.get("support-triage", version=2)
    for fetched in (by_label, pinned):
        assert (fetched.name, fetched.version, fetched.config_hash) == ("support-triage", 2, expected.config_hash)
        assert fetched.config == expected.config.model_dump(mode="json", by_alias=True) and fetched.etag


def test_an_etag_still_current_gives_none_and_a_moved_label_a_new_version(source: PromptSource, server: Served) -> None:
    ref = PromptRef.of("greet", label="canary")
    server.registry.set_label("greet", "canary", 1, who="test")
    first = source.fetch(ref)
    assert source.fetch(ref, first.etag) is None
    server.registry.register("greet", server.registry.get("greet").config.with_instruction("Hello."), created_by="t")
    server.registry.set_label("greet", "canary", 2, who="test")
    assert source.fetch(ref, first.etag).version == 2


@pytest.mark.parametrize(
    "ref",
    [
        PromptRef.of("nope"),
        PromptRef.of("support-triage", label="canary-x"),
        PromptRef.of("support-triage", version=99),
    ],
)
def test_what_does_not_exist_is_not_found(source: PromptSource, ref: PromptRef) -> None:
    with pytest.raises(NotFound):
        source.fetch(ref)


def test_location_holds_no_credential() -> None:
    assert StoreSource("postgresql://app:s3cret@db.internal/evals").location == "postgresql://app:***@db.internal/evals"
    assert "s3cret" not in HttpSource("http://127.0.0.1:1", token="s3cret").location
