"""A code task's version is one bundle (its function, code hash and every prompt), on SQLite and PostgreSQL:
round trip by content hash, labels that move the whole bundle, credentials refused in any prompt, per-prompt
diffs, the promotion gate, the CLI and the leaderboard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from promptopt.cli import _registry
from promptopt.config import PipelineConfig, PromptConfig, TaskConfig
from promptopt.engine import EvalResult
from promptopt.errors import InputError, NotFound
from promptopt.registry import Lineage, Registry, promote_if_better
from promptopt.reports import build_prompt_leaderboard
from promptopt.spec import Decoding
from promptopt.store import get_store
from tests.registry.helpers import bundle, config, eval_result

CASES = [f"case-{i}" for i in range(40)]


def test_a_bundle_round_trips_as_one_version_with_its_content_hash(registry: Registry) -> None:
    first, created = registry.register("qa-pipeline", bundle(), created_by="alice")
    assert created and first.version == 1
    assert isinstance(first.config, PipelineConfig) and first.config == bundle()
    assert first.config_hash == bundle().hash
    read = registry.get("qa-pipeline", version=1)
    assert read == first and read.config.hash == first.config_hash  # nothing lost in the database
    assert read.config.model == "openai/fake+openai/fake-large"
    assert read.prompt("answer") == bundle().prompt("answer")
    with pytest.raises(KeyError, match=r"no prompt 'nope' in this task; it has \['answer', 'rewrite'\]"):
        read.prompt("nope")
    again, created = registry.register("qa-pipeline", bundle(), created_by="bob")
    assert not created and again == first
    changed_code, created = registry.register("qa-pipeline", bundle(code_hash="d" * 64), created_by="bob")
    assert created and changed_code.version == 2  # the same prompts with other code are another version
    assert [v.version for v in registry.versions("qa-pipeline")] == [1, 2]


def test_one_prompt_versions_still_read_as_prompt_configs(registry: Registry) -> None:
    registry.register("triage", config(), created_by="alice")
    registry.register("qa-pipeline", bundle(), created_by="alice")
    one = registry.get("triage")
    assert type(one.config) is PromptConfig and one.config == config()
    assert type(registry.get("qa-pipeline").config) is PipelineConfig
    with pytest.raises(KeyError, match="triage v1 is one prompt, not a code task"):
        one.prompt("answer")


def test_a_label_moves_the_whole_bundle(registry: Registry) -> None:
    registry.register("qa-pipeline", bundle("Answer briefly."), created_by="alice")
    registry.register("qa-pipeline", bundle("Answer with a citation.", code_hash="e" * 64), created_by="alice")
    registry.set_label("qa-pipeline", "production", 1, who="alice")
    event = registry.set_label("qa-pipeline", "production", 2, who="bob", why="cites")
    assert (event.from_version, event.to_version) == (1, 2)
    live = registry.get("qa-pipeline", label="production")
    assert live.config == bundle("Answer with a citation.", code_hash="e" * 64)  # prompts and code together
    assert live.prompt("answer").instruction == "Answer with a citation." and live.config.code_hash == "e" * 64
    registry.rollback("qa-pipeline", "production", who="oncall")
    back = registry.get("qa-pipeline", label="production")
    assert back.config == bundle("Answer briefly.") and back.config_hash == bundle("Answer briefly.").hash


def test_a_credential_in_any_prompt_of_a_bundle_is_refused_and_nothing_is_written(registry: Registry) -> None:
    leaky = bundle().with_prompt(
        "rewrite", bundle().prompt("rewrite").model_copy(update={"params": Decoding(extra={"api_key": "sk-123"})})
    )
    with pytest.raises(InputError, match="config.prompts.rewrite.params.extra.api_key: looks like a credential"):
        registry.register("qa-pipeline", leaky, created_by="alice")
    with pytest.raises(NotFound):
        registry.versions("qa-pipeline")


def test_the_diff_of_two_bundles_is_per_prompt_after_the_function(registry: Registry) -> None:
    registry.register("qa-pipeline", bundle("Answer briefly."), lineage=Lineage(test_score=0.5), created_by="a")
    registry.register(
        "qa-pipeline",
        bundle("Answer with a citation.", code_hash="e" * 64, answer_model="openai/fake-xl"),
        lineage=Lineage(test_score=0.625),
        created_by="a",
    )
    text = registry.diff("qa-pipeline", 1, 2)
    lines = text.splitlines()
    assert "--- qa-pipeline v1 function" in lines and f"-code_hash: {'c' * 64}" in lines
    assert f"+code_hash: {'e' * 64}" in lines
    assert "--- qa-pipeline v1 prompt answer template" in lines
    assert "-Answer briefly." in lines and "+Answer with a citation." in lines
    assert "+++ qa-pipeline v2 prompt answer parameters" in lines and '+  "model": "openai/fake-xl",' in lines
    assert not any("prompt rewrite" in line for line in lines)  # identical prompts are left out
    assert lines[-1] == "test_score: 0.5000 -> 0.6250 (+0.1250)"
    assert registry.diff("qa-pipeline", 2, 2) == ""


def test_a_prompt_added_to_a_bundle_shows_whole(registry: Registry) -> None:
    base = bundle()
    grown = PipelineConfig(
        function=base.function,
        code_hash=base.code_hash,
        prompts={**base.prompts, "check": config("Check the answer.")},
        output=base.output,
    )
    registry.register("qa-pipeline", base, created_by="a")
    registry.register("qa-pipeline", grown, created_by="a")
    lines = registry.diff("qa-pipeline", 1, 2).splitlines()
    assert "+++ qa-pipeline v2 prompt check template" in lines and "+Check the answer." in lines
    assert not any(line.startswith("--- qa-pipeline v1 function") for line in lines)


def test_the_gate_evaluates_and_promotes_bundles(registry: Registry) -> None:
    weak, strong = bundle("weak"), bundle("strong", code_hash="e" * 64)
    scores = {
        "weak": {c: float(i % 2) for i, c in enumerate(CASES)},
        "strong": {c: 1.0 if i % 10 else 0.0 for i, c in enumerate(CASES)},
    }
    seen: list[TaskConfig] = []

    async def evaluate(candidate: TaskConfig) -> EvalResult:
        seen.append(candidate)
        assert isinstance(candidate, PipelineConfig)
        return eval_result(scores[candidate.prompt("answer").instruction], config_hash=candidate.hash)

    registry.register("qa-pipeline", weak, created_by="alice")
    registry.set_label("qa-pipeline", "production", 1, who="alice")
    decision = asyncio.run(promote_if_better(registry, "qa-pipeline", strong, evaluate=evaluate, who="ci"))
    assert decision.promoted and (decision.version, decision.incumbent_version) == (2, 1)
    assert seen == [weak, strong]  # the incumbent bundle, read back from the store, then the candidate
    assert registry.get("qa-pipeline", label="production").config == strong


@pytest.fixture
def cli_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = get_store(url)
    registry = Registry(store)
    registry.register("qa-pipeline", bundle("Answer briefly."), lineage=Lineage(test_score=0.5), created_by="alice")
    registry.register("qa-pipeline", bundle("Answer with a citation.", code_hash="e" * 64), created_by="bob")
    registry.set_label("qa-pipeline", "production", 2, who="alice")
    store.dispose()
    return url


def cli(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    _registry.register(app)
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "USER": "tester"})
    return result.exit_code, result.output


def test_the_cli_lists_shows_and_diffs_bundles(cli_store: str) -> None:
    code, out = cli("registry", "list", "qa-pipeline", "--store", cli_store)
    assert code == 0 and "openai/fake+openai/fake-large" in out and "production" in out
    code, out = cli("registry", "show", "qa-pipeline", "--store", cli_store)
    assert code == 0, out
    assert (
        "qa-pipeline v2 (production)" in out and "code task: function qa.pipeline:answer, code hash eeeeeeeeeeee" in out
    )
    assert out.index("prompt rewrite") < out.index("Rewrite the question") < out.index("prompt answer")
    assert out.index("prompt answer") < out.index("Answer with a citation.")
    code, out = cli("registry", "show", "qa-pipeline", "--version", "1", "--json", "--store", cli_store)
    shown = json.loads(out)
    assert code == 0 and PipelineConfig.model_validate(shown["config"]).hash == shown["config_hash"]
    assert shown["config"]["function"] == "qa.pipeline:answer" and list(shown["config"]["prompts"]) == [
        "rewrite",
        "answer",
    ]
    code, out = cli("registry", "diff", "qa-pipeline", "1", "2", "--store", cli_store)
    assert code == 0 and "+Answer with a citation." in out and "--- qa-pipeline v1 prompt answer template" in out


def test_the_leaderboard_describes_bundle_versions(registry: Registry) -> None:
    registry.register("qa-pipeline", bundle(), lineage=Lineage(test_score=0.5), created_by="alice")
    board = build_prompt_leaderboard(registry.store, "qa-pipeline")
    (entry,) = board.entries
    assert (entry.kind, entry.model, entry.test_score) == ("version", "openai/fake+openai/fake-large", 0.5)
    assert entry.description == bundle().describe()
