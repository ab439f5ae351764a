"""A fine-tuned version records what its model was trained from, and its LoRA adapter travels with the store:
registered from where it was trained, read back in a fresh registry over the same URL whose adapters folder is
empty (another machine, in effect). On SQLite and PostgreSQL; the adapter is a few fake bytes."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from promptopt.config import PromptConfig
from promptopt.engine import EvalResult
from promptopt.errors import InputError
from promptopt.models import ADAPTERS_ENV, LocalModelError, local_adapter_file
from promptopt.registry import AdapterMismatch, Lineage, PromptVersion, Registry
from promptopt.sdk import PromptClient
from promptopt.search import Candidate, RunOptions, Verdict, promote_winner
from promptopt.search._promote import fine_tune_lineage
from promptopt.search_spaces import FineTuneDimension, SearchSpace
from promptopt.store import Store
from promptopt.store._engine import create_store_engine
from promptopt.store._migrate import downgrade, upgrade
from promptopt.store._url import resolve_url
from tests.registry.helpers import config, eval_result
from tests.search.helpers import loaded_and_data, write_spec

KEY = "0123456789abcdef"
MODEL = f"local/smollm2-135m+ft-{KEY}"
WEIGHTS = b"GGUF\x03\x00fake lora weights \x00\xff" * 50
JOB_LINEAGE: dict[str, Any] = {
    "base_model": "local/smollm2-135m",
    "key": KEY,
    "data": "train",
    "data_hash": "d" * 64,
    "rows": 200,
    "params": {"rank": 8, "alpha": 16, "epochs": 2, "learning_rate": 0.002, "max_rows": 200},
    "file_sha256": hashlib.sha256(WEIGHTS).hexdigest(),
    "train_s": 177.2,
    "reused": False,
}
FINE_TUNE = {**JOB_LINEAGE, "job": "lora", "model": MODEL}  # what the registry records for a winner on MODEL
LINEAGE = Lineage(run_id="r" * 32, fine_tune=FINE_TUNE)


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The adapters folder of the machine that trained the adapter (the current one until a test moves)."""
    folder = tmp_path / "trained"
    folder.mkdir()
    (folder / f"{KEY}.gguf").write_bytes(WEIGHTS)
    monkeypatch.setenv(ADAPTERS_ENV, str(folder))
    return folder


def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Move to a machine whose adapters folder is empty."""
    folder = tmp_path / "elsewhere"
    monkeypatch.setenv(ADAPTERS_ENV, str(folder))
    return folder


def _register(url: str, name: str = "triage", *, lineage: Lineage = LINEAGE, **fields: Any) -> PromptVersion:
    store = Store(url)
    try:
        version, _ = Registry(store).register(name, config(model=MODEL, **fields), lineage=lineage, created_by="a")
        return version
    finally:
        store.dispose()


def _sql(url: str, statement: str) -> Any:
    store = Store(url)
    try:
        with store.engine.begin() as connection:
            result = connection.execute(sa.text(statement))
            return result.all() if result.returns_rows else None
    finally:
        store.dispose()


def _get(url: str, name: str = "triage") -> PromptVersion:
    store = Store(url)  # a fresh store and registry: nothing of the registering process is reused
    try:
        return Registry(store).get(name)
    finally:
        store.dispose()


def _versions(url: str) -> list[PromptVersion]:
    store = Store(url)
    try:
        return Registry(store).versions("triage")
    finally:
        store.dispose()


@pytest.mark.usefixtures("trained")
def test_a_fine_tuned_version_brings_its_adapter_and_lineage_to_another_machine(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered = _register(store_url)
    assert registered.lineage.fine_tune == FINE_TUNE
    folder = _elsewhere(tmp_path, monkeypatch)
    with pytest.raises(LocalModelError):
        local_adapter_file(MODEL)  # the local provider could not serve it here before the read
    found = _get(store_url)
    assert found == registered and found.lineage.fine_tune == FINE_TUNE
    assert local_adapter_file(MODEL) == folder / f"{KEY}.gguf"
    assert (folder / f"{KEY}.gguf").read_bytes() == WEIGHTS
    assert [p.name for p in folder.iterdir()] == [f"{KEY}.gguf"]  # no temporary file left beside it


@pytest.mark.usefixtures("trained")
def test_registering_again_stores_the_adapter_once(store_url: str) -> None:
    first = _register(store_url)
    assert _register(store_url) == first  # the same content: the same version
    _register(store_url, name="other-prompt")
    _register(store_url, params={"temperature": 0.5})  # another version on the same model
    assert _sql(store_url, "SELECT key, sha256, size FROM adapter") == [(KEY, JOB_LINEAGE["file_sha256"], len(WEIGHTS))]


def test_another_file_under_a_stored_key_is_refused_naming_the_key(store_url: str, trained: Path) -> None:
    _register(store_url)
    (trained / f"{KEY}.gguf").write_bytes(WEIGHTS + b"retrained")
    with pytest.raises(AdapterMismatch, match=f"adapter {KEY}: the store holds another file"):
        _register(store_url, lineage=Lineage(), params={"temperature": 0.5})  # no trained hash to catch it first
    assert [v.version for v in _versions(store_url)] == [1]  # nothing registered


@pytest.mark.usefixtures("trained")
def test_a_corrupt_stored_adapter_is_refused_and_nothing_is_written(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(store_url)
    _sql(store_url, "UPDATE adapter SET content = " + ("X'00'" if "sqlite" in store_url else "'\\x00'::bytea"))
    folder = _elsewhere(tmp_path, monkeypatch)
    with pytest.raises(AdapterMismatch, match=f"adapter {KEY} in the store is corrupt: its 1 bytes"):
        _get(store_url)
    assert not folder.exists() or not list(folder.iterdir())


@pytest.mark.usefixtures("trained")
def test_an_adapter_the_store_lacks_too_is_left_to_the_local_provider(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered = _register(store_url)
    _sql(store_url, "DELETE FROM adapter")  # as for a version registered before the store kept adapters
    _elsewhere(tmp_path, monkeypatch)
    assert _get(store_url) == registered
    with pytest.raises(LocalModelError, match=f"adapter {KEY} of .* not found") as missing:
        local_adapter_file(MODEL)
    assert missing.value.status == 404


def test_a_fine_tune_whose_adapter_is_nowhere_is_not_registered(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _elsewhere(tmp_path, monkeypatch)
    with pytest.raises(InputError, match="config.model: the adapter of .* is neither at") as refused:
        _register(sqlite_url)
    assert refused.value.field == "config.model"
    assert _sql(sqlite_url, "SELECT count(*) FROM prompt_version") == [(0,)]


def test_an_adapter_that_is_not_the_trained_file_is_not_registered(sqlite_url: str, trained: Path) -> None:
    (trained / f"{KEY}.gguf").write_bytes(b"something else")
    with pytest.raises(InputError, match="is not the adapter the run trained") as refused:
        _register(sqlite_url)
    assert refused.value.field == "lineage.fine_tune.file_sha256"
    assert _sql(sqlite_url, "SELECT count(*) FROM adapter") == [(0,)]


def test_a_prompt_only_version_has_no_fine_tune_and_no_adapter(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        version, _ = Registry(store).register("triage", config(), created_by="a")
    finally:
        store.dispose()
    assert version.lineage.fine_tune is None and _get(sqlite_url).lineage.fine_tune is None
    assert _sql(sqlite_url, "SELECT count(*) FROM adapter") == [(0,)]


def test_versions_of_a_0007_store_read_back_without_fine_tune(store_url: str) -> None:
    engine = create_store_engine(resolve_url(store_url))
    try:
        upgrade(engine, "0007")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO prompt_version (name, version, config, config_hash, model, test_score, created_at,"
                    " created_by) VALUES ('triage', 1, :config, :hash, 'openai/fake', 0.7, CURRENT_TIMESTAMP, 'a')"
                ),
                {"config": config().model_dump_json(by_alias=True), "hash": config().hash},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO prompt_label (name, label, version, updated_at, updated_by)"
                    " VALUES ('triage', 'production', 1, CURRENT_TIMESTAMP, 'a')"
                )
            )
        upgrade(engine)
        found = _get(store_url)
        assert (found.config, found.lineage) == (config(), Lineage(test_score=0.7))
        assert found.lineage.fine_tune is None
        downgrade(engine, "0007")  # and back, with a label pointing at the version
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT name, version FROM prompt_version")).all() == [("triage", 1)]
        assert "adapter" not in sa.inspect(engine).get_table_names()
    finally:
        downgrade(engine, "base")
        engine.dispose()


def _space(base: PromptConfig) -> SearchSpace:
    return SearchSpace(base, (FineTuneDimension({"lora": MODEL}, {"lora": JOB_LINEAGE}),))


def test_the_job_lineage_of_the_winner_s_model_is_found_in_the_space() -> None:
    space = _space(config())
    assert fine_tune_lineage(space, MODEL) == FINE_TUNE
    assert fine_tune_lineage(space, "openai/fake") is None
    assert fine_tune_lineage(SearchSpace(config(), ()), MODEL) is None


@pytest.mark.usefixtures("trained")
def test_promoting_a_fine_tuned_winner_registers_its_job_lineage_and_adapter(sqlite_url: str, tmp_path: Path) -> None:
    loaded, dataset = loaded_and_data(write_spec(tmp_path))
    space = _space(PromptConfig.from_task(loaded.spec.task))
    winner = space.config({"fine_tune": "lora"})
    assert winner.model == MODEL
    candidates = [
        Candidate(trial=t, config=c.model_dump(mode="json", by_alias=True), description="", validation_score=s)
        for t, c, s in ((0, space.config(space.baseline()), 0.5), (3, winner, 0.9))
    ]
    verdict = Verdict(baseline=candidates[0], best=candidates[1], lift=None, leaderboard=tuple(candidates))

    async def on_test(candidate: PromptConfig) -> EvalResult:
        right = candidate.model == MODEL
        return eval_result({f"c{i}": float(right or i % 2 == 0) for i in range(30)}, config_hash=candidate.hash)

    store = Store(sqlite_url)
    try:
        decision = asyncio.run(
            promote_winner(
                store,
                loaded,
                dataset,
                run_id="r" * 32,
                space=space,
                verdict=verdict,
                options=RunOptions(),
                incumbent_eval=on_test,
            )
        )
        found = Registry(store).get(loaded.spec.task.name, version=decision.version)
    finally:
        store.dispose()
    assert decision.promoted
    assert found.config.model == MODEL and found.lineage.trial == 3
    assert found.lineage.fine_tune == FINE_TUNE
    assert _sql(sqlite_url, "SELECT key FROM adapter") == [(KEY,)]


@pytest.mark.usefixtures("trained")
def test_a_prompt_client_on_the_store_brings_the_adapter_too(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(sqlite_url)
    folder = _elsewhere(tmp_path, monkeypatch)
    with PromptClient(sqlite_url, cache_dir=tmp_path / "lkg") as client:
        assert client.get("triage", version=1).config.model == MODEL
    assert (folder / f"{KEY}.gguf").read_bytes() == WEIGHTS


@pytest.mark.usefixtures("trained")
def test_an_adapters_folder_that_cannot_be_written_still_reads_the_version(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registered = _register(sqlite_url)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(ADAPTERS_ENV, str(blocked / "adapters"))  # below a file: no folder can be made there
    assert _get(sqlite_url) == registered
    assert f"could not write adapter {KEY}" in caplog.text
