"""`optimize registry ...` and `optimize serve` through the CLI runner: output, audit, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from promptopt.cli import _registry, _serve
from promptopt.registry import Lineage, Registry
from promptopt.store import get_store
from tests.registry.helpers import config, rich_config

app = typer.Typer()
_registry.register(app)
_serve.register(app)
runner = CliRunner()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = get_store(url)
    registry = Registry(store)
    registry.register("triage", config("Classify the review."), lineage=Lineage(test_score=0.5), created_by="alice")
    registry.register(
        "triage", rich_config(), lineage=Lineage(run_id="f" * 32, trial=3, test_score=0.75), created_by="optimize run"
    )
    registry.set_label("triage", "production", 1, who="alice", why="first")
    store.dispose()
    return url


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", "USER": "tester", **(env or {})})
    return result.exit_code, result.output


def test_list_show_and_diff(store_url: str) -> None:
    code, out = run("registry", "list", "--store", store_url)
    assert code == 0 and "triage" in out and "v2" in out and "production=v1" in out
    code, out = run("registry", "list", "triage", "--store", store_url)
    assert code == 0 and "ffffffff / 3" in out and "0.7500" in out and "production" in out
    code, out = run("registry", "show", "triage", "--label", "production", "--store", store_url)
    assert code == 0 and "triage v1 (production)" in out and "Classify the review." in out and "[system]" in out
    code, out = run("registry", "show", "triage", "--version", "2", "--json", "--store", store_url)
    shown = json.loads(out)
    assert code == 0 and shown["version"] == 2 and shown["labels"] == [] and shown["config"]["tools"]
    assert shown["lineage"]["trial"] == 3
    code, out = run("registry", "diff", "triage", "1", "2", "--store", store_url)
    assert code == 0 and "+Answer in JSON." in out and "test_score: 0.5000 -> 0.7500" in out


def test_promote_rollback_and_history(store_url: str) -> None:
    code, out = run(
        "registry", "promote", "triage", "2", "--label", "production", "--why", "better on test", "--store", store_url
    )
    assert code == 0 and "production: set v1 -> v2 by tester: better on test" in out
    code, out = run("registry", "rollback", "triage", "--label", "production", "--who", "oncall", "--store", store_url)
    assert code == 0 and "rollback v2 -> v1 by oncall" in out
    code, out = run("registry", "history", "triage", "--json", "--store", store_url)
    events = json.loads(out)
    assert [(e["kind"], e["from_version"], e["to_version"], e["who"]) for e in events] == [
        ("set", None, 1, "alice"),
        ("set", 1, 2, "tester"),
        ("rollback", 2, 1, "oncall"),
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("registry", "show", "nope"), 1, "no prompt named 'nope'"),
        (("registry", "show", "triage", "--label", "staging"), 1, "no label 'staging'"),
        (("registry", "promote", "triage", "9", "--label", "production"), 1, "no version 9"),
        (("registry", "promote", "triage", "1", "--label", "Prod!"), 2, "label: 'Prod!' is not a label"),
        (("registry", "rollback", "triage", "--label", "production"), 2, "no earlier version"),
    ],
)
def test_errors_exit_with_a_message(store_url: str, args: tuple[str, ...], code: int, message: str) -> None:
    exit_code, out = run(*args, "--store", store_url)
    assert exit_code == code and message in " ".join(out.split())
    assert len(Registry(get_store(store_url)).history("triage")) == 1  # nothing written


def test_serve_refuses_to_start_writes_without_a_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never-created.db'}"
    code, out = run("serve", "--store", url, env={"OPTIMIZE_SERVER_TOKEN": ""})
    assert code == 2 and (
        "need a bearer token (set OPTIMIZE_SERVER_TOKEN or pass --token-file FILE; or serve "
        "reads only with --read-only)"
    ) in " ".join(out.split())
    (tmp_path / "empty").write_text("\n")
    code, out = run("serve", "--store", url, "--token-file", str(tmp_path / "empty"))
    assert code == 2 and "the token file is empty" in out
    code, out = run("serve", "--store", url, "--read-only", "--protect-reads", env={"OPTIMIZE_SERVER_TOKEN": ""})
    assert code == 2 and "--protect-reads needs a bearer token" in " ".join(out.split())
    assert not (tmp_path / "never-created.db").exists()


def test_the_token_comes_from_the_file_first_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTIMIZE_SERVER_TOKEN", "from-env")
    assert _serve.read_token(None) == "from-env"
    (tmp_path / "token").write_text("from-file\nignored\n")
    assert _serve.read_token(tmp_path / "token") == "from-file"
