"""Every example in the README is executed, as parsed from README.md at test time (a new example that breaks fails).

* The quick start: two commands, CI calls the test one, and the demo command works on the embedded model.
* Every other fenced block, in README order, in one temporary folder (the current directory, so the default store
  ``./.optimize/optimize.db`` and cache are in it), with a loopback fake for the model and ``optimize serve`` run for
  real on a free port as the README starts it: each ``optimize`` command line with its own arguments, each python
  block against that server and again against the store URL, each yaml block as a spec (a search section merged
  into the spec before it) or as CI steps whose commands run the same way.
* Every ``optimize`` command named inline (the commands table, the prose) exists, with the options it is shown with.
* Every experiment spec validates.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from typer.testing import CliRunner

from promptopt.cli.app import app
from promptopt.logs import LogQuery, LogStore
from promptopt.registry import Registry
from promptopt.schedules import Schedules
from promptopt.sdk import PromptClient, PromptLogger
from promptopt.spec import Decoding
from promptopt.store import Store, get_store
from promptopt.testing import FakeOpenAIServer
from tests.registry.helpers import config
from tests.test_self_contained import OPTIMIZE, experiment_specs, validate

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO = ROOT / "experiments" / "demo"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
REVIEW = "A great film with a wonderful cast."  # the `review` the README's logging example sends
TOKEN = "readme-test-token-0123456789"  # stands for the README's `OPTIMIZE_SERVER_TOKEN=...`


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # of the opening fence, 1-based
    text: str


@dataclass(frozen=True)
class Command:
    """One shell command line: leading ``VAR=value`` assignments, the words, an output redirection."""

    text: str
    env: dict[str, str]
    argv: list[str]
    redirect: tuple[str, str] | None = None  # (">" or ">>", file)


def fenced_blocks(text: str) -> list[Block]:
    return [Block(m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text)]


def shell_commands(script: str) -> list[Command]:
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        env = {}
        while words and ASSIGNMENT.match(words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        redirect = None
        for op in (">", ">>"):
            if op in words:
                at = words.index(op)
                redirect, words[at : at + 2] = (op, words[at + 1]), []
        if words:
            commands.append(Command(" ".join(shlex.quote(w) for w in words), env, words, redirect))
    return commands


BLOCKS = fenced_blocks(README.read_text())
CLI = typer.main.get_command(app)


def subcommands(command: Any) -> dict[str, Any]:
    """A group's commands by name (typer vendors its own click: test for the attribute, not the class)."""
    return getattr(command, "commands", None) or {}


def command_path(argv: list[str]) -> tuple[tuple[str, ...], Any]:
    """The subcommand words of ``optimize ...`` and the (click) command they name."""
    path: list[str] = []
    command = CLI
    for word in argv[1:]:
        if word not in subcommands(command):
            break
        path.append(word)
        command = command.commands[word]
    return tuple(path), command


def options_of(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


# -- the quick start ----------------------------------------------------------------------------------------------
def quick_start_commands() -> list[str]:
    text = README.read_text()
    section = re.search(r"## Quick start\n(.*?)\n## ", text, re.S)
    assert section, "README.md has no '## Quick start' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, "the quick start has no bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def test_quick_start_has_exactly_the_demo_and_the_test_command():
    assert quick_start_commands() == ["bash scripts/dev.sh demo", "bash scripts/dev.sh test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert quick_start_commands()[1] in ci


def test_dev_script_demo_runs_the_demo_spec_with_optimize_run():
    script = (ROOT / "scripts" / "dev.sh").read_text()
    demo = script[script.index("  demo)") : script.index(";;", script.index("  demo)"))]
    assert "cd experiments/demo" in demo and '"$VENV/bin/optimize" run spec.yaml' in demo
    assert (ROOT / "experiments" / "demo" / "spec.yaml").is_file()


@pytest.mark.slow
@pytest.mark.timeout(900)  # the demo command's own limit below, not pytest's default 600 s
def test_the_demo_command_runs_on_the_embedded_model(tmp_path):
    env = {
        **os.environ,
        "OPTIMIZE_STORE": f"sqlite:///{tmp_path / 'demo.db'}",
        "OPTIMIZE_CACHE": str(tmp_path / "cache"),
        "DEMO_ARGS": "--json",
    }
    out = subprocess.run(
        ["bash", "scripts/dev.sh", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["status"] == "finished" and result["trials"] >= 2
    assert result["baseline"]["config"]["model"] == "local/smollm2-135m"
    assert result["best"]["validation_score"] >= result["baseline"]["validation_score"]
    assert result["best"]["test_score"] is not None and result["model_calls"] > 0


# Commands of the fenced blocks that are not `optimize`: the test of this file that runs or checks each.
COVERED_ELSEWHERE = {
    "bash scripts/dev.sh demo": "test_the_demo_command_runs_on_the_embedded_model",
    "bash scripts/dev.sh test": "test_ci_runs_the_readme_test_command",
}


# -- the environment every fenced block runs in -------------------------------------------------------------------
def spec_blocks() -> list[tuple[Block, dict[str, Any]]]:
    """The yaml blocks that are whole specs (they have a ``task``), with their data."""
    found = []
    for block in BLOCKS:
        data = yaml.safe_load(block.text) if block.lang == "yaml" else None
        if isinstance(data, dict) and "task" in data:
            found.append((block, data))
    assert found, "README.md shows no spec"
    return found


PROMPT = spec_blocks()[0][1]["task"]["name"]  # the prompt the README's examples look up and log to


def serve_command() -> Command:
    found = [
        c for b in BLOCKS if b.lang == "bash" for c in shell_commands(b.text) if c.argv[:2] == ["optimize", "serve"]
    ]
    assert len(found) == 1, f"README.md should start the server once, found {[c.text for c in found]}"
    return found[0]


def readme_server_url() -> str:
    """The URL the README's examples use for the server its ``optimize serve`` line starts."""
    argv = serve_command().argv
    port = argv[argv.index("--port") + 1] if "--port" in argv else "8080"
    return f"http://127.0.0.1:{port}"


@dataclass
class Env:
    folder: Path
    store_url: str  # the folder's default store, as an absolute URL
    store: Store  # the same store, to read back what the examples did
    server_url: str  # where the README's `optimize serve` listens here
    model: FakeOpenAIServer
    seen: list[list[dict[str, Any]]]  # the messages of every call that reached the model
    litellm: Any

    def registry(self) -> Registry:
        return Registry(self.store)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(store_url: str, model_url: str) -> None:
    """The prompt with two versions, production moved 1 -> 2 (so there is something to roll back), and one log
    with feedback, so that every block finds what it reads whatever order the README puts them in."""
    store = get_store(store_url)
    registry = Registry(store)
    params = Decoding(temperature=0, max_tokens=8, extra={"api_base": model_url})
    for instruction in ("Is the following movie review positive or negative?", "Answer positive or negative."):
        registry.register(PROMPT, config(instruction, params=params), created_by="readme-test")
    for version in (1, 2):
        registry.set_label(PROMPT, "production", version, who="readme-test", why="seed")
    with PromptLogger(store, spool_dir=False) as logger:
        log_id = logger.log(PROMPT, 2, {"text": "A wonderful film."}, "positive", model="openai/fake")
        logger.feedback(log_id, label="positive")
    store.dispose()


@contextmanager
def serving(command: Command, folder: Path) -> Iterator[str]:
    """The README's ``optimize serve`` line as a process in ``folder``, on a free port instead of its own."""
    port = free_port()
    argv = list(command.argv)
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port)
    else:
        argv += ["--port", str(port)]
    env = {**os.environ, **{k: TOKEN if v == "..." else v for k, v in command.env.items()}}
    url = f"http://127.0.0.1:{port}"
    with open(folder / "serve.log", "w") as log:
        proc = subprocess.Popen([str(OPTIMIZE), *argv[1:]], cwd=folder, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"`{command.text}` exited: {(folder / 'serve.log').read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"`{command.text}` did not answer in 90 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    import litellm  # noqa: TID251 - the README's python examples call litellm themselves

    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(DEMO, folder / "experiments" / "demo")  # the README's commands name it from the repo root
    seen: list[list[dict[str, Any]]] = []

    def answer(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        return "positive"

    with pytest.MonkeyPatch.context() as patch, FakeOpenAIServer(answer=answer) as model:
        patch.chdir(folder)
        for name in ("OPTIMIZE_STORE", "OPTIMIZE_CACHE", "OPTIMIZE_SERVER_TOKEN"):
            patch.delenv(name, raising=False)
        patch.setenv("XDG_CACHE_HOME", str(folder / "xdg"))  # the SDK's last-known-good copies and log spool
        patch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")  # litellm wants one; the fake ignores it
        store_url = f"sqlite:///{folder / '.optimize' / 'optimize.db'}"
        (folder / ".optimize").mkdir()
        seed(store_url, model.url)
        store = get_store(store_url)
        with serving(serve_command(), folder) as server_url:
            yield Env(folder, store_url, store, server_url, model, seen, litellm)
        store.dispose()


# -- shell commands ---------------------------------------------------------------------------------------------
def materialize_specs(command: Command, env: Env) -> None:
    """A spec file a command names that the folder does not have (the CI example's ``prompts/support.yaml``) is
    the README's spec, on the fake model, with the demo's reviews as its data."""
    for word in command.argv[1:]:
        path = env.folder / word
        if word.endswith((".yaml", ".yml")) and not path.exists():
            write_spec(spec_blocks()[0][1], path, model_url=env.model.url)


def write_spec(data: dict[str, Any], path: Path, *, model_url: str | None = None) -> Path:
    data = json.loads(json.dumps(data))
    if model_url is not None:
        data["task"]["model"] = "openai/fake"
        data["task"].setdefault("params", {})["extra"] = {"api_base": model_url}
    path.parent.mkdir(parents=True, exist_ok=True)
    for key in ("file", "train", "validation", "test"):
        if isinstance(data.get("dataset", {}).get(key), str):
            shutil.copyfile(DEMO / "reviews.jsonl", path.parent / data["dataset"][key])
    path.write_text(yaml.safe_dump(data))
    return path


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def check_effect(path: tuple[str, ...], argv: list[str], before: dict[str, int], env: Env, stdout: str) -> None:
    """What the command promises, read back from the store or the folder."""
    if path == ("registry", "promote"):
        assert env.registry().labels(argv[3])[option(argv, "--label")] == int(argv[4])
    elif path == ("registry", "rollback"):
        label = option(argv, "--label")
        assert env.registry().labels(argv[3])[label] != before[label]
    elif path == ("logs", "export"):
        rows = [json.loads(line) for line in (env.folder / option(argv, "--out")).read_text().splitlines()]
        assert rows and all({"input", "expected"} <= set(r) for r in rows), rows
    elif path == ("schedule", "add"):
        assert option(argv, "--name") in {s.name for s in Schedules(env.store).list()}
    elif path == ("eval",) and "--against" in argv:
        assert "|" in stdout  # the gate's Markdown table


def run_optimize(command: Command, env: Env) -> None:
    path, _ = command_path(command.argv)
    if path == ("serve",):
        assert command == serve_command()  # the fixture runs it, on a free port
        return
    materialize_specs(command, env)
    before = env.registry().labels(PROMPT)
    result = CliRunner().invoke(app, command.argv[1:], env=command.env or None)
    assert result.exit_code == 0, (
        f"README.md: `{command.text}` exited {result.exit_code}:\n{result.output}\n{result.exception!r}"
    )
    if command.redirect:
        op, target = command.redirect
        with open(env.folder / target, "a" if op == ">>" else "w") as out:
            out.write(result.stdout)
    check_effect(path, command.argv, before, env, result.stdout)


def run_command(command: Command, env: Env) -> None:
    if command.argv[0] == "optimize":
        run_optimize(command, env)
    elif command.argv[0] == "cat":  # a CI step that publishes what an earlier step wrote
        for name in command.argv[1:]:
            assert (env.folder / name).read_text().strip(), f"`{command.text}`: {name} is empty"
    else:
        test = COVERED_ELSEWHERE.get(command.text)
        assert test in globals(), f"README.md runs `{command.text}`, which no test here exercises"


# -- python blocks ----------------------------------------------------------------------------------------------
def calls_to(tree: ast.AST, attribute: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute
    ]


def value(node: ast.expr, namespace: dict[str, Any]) -> Any:
    return eval(compile(ast.Expression(node), "<README>", "eval"), namespace)  # an argument of the README's code


def assigned_name(tree: ast.AST, call: ast.Call) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and node.value is call and isinstance(node.targets[0], ast.Name):
            return node.targets[0].id
    return None


def run_python(block: Block, env: Env, url: str) -> None:
    """Run the block with ``url`` for the README's server (and for its ``URL``); then check what reached the model
    and the store: each model call carried the production prompt rendered with the block's arguments, each log
    and each feedback the block sent is stored as sent."""
    source = block.text.replace(readme_server_url(), url)
    tree = ast.parse(source)
    namespace: dict[str, Any] = {
        "__name__": "readme",
        "URL": url,
        "TOKEN": TOKEN,
        "review": REVIEW,
        "litellm": env.litellm,
    }
    logs = LogStore(env.store)
    seen_before, logs_before = len(env.seen), len(logs.query(LogQuery(prompt=PROMPT)))
    try:
        exec(compile("\n" * block.line + source, str(README), "exec"), namespace)  # tracebacks name README lines
    finally:
        for thing in namespace.values():
            if isinstance(thing, PromptLogger | PromptClient):
                thing.close()
    sent = env.seen[seen_before:]
    assert len(sent) == len(calls_to(tree, "completion")), sent
    with PromptClient(env.store_url, cache_dir=False) as client:
        production = client.get(PROMPT, label="production")
        rendered = [
            production.render(**{k.arg: value(k.value, namespace) for k in call.keywords if k.arg})
            for call in calls_to(tree, "render")
        ]
    for messages in sent:
        assert [{"role": m["role"], "content": m["content"]} for m in messages] in [r["messages"] for r in rendered]
    log_calls, feedback_calls = calls_to(tree, "log"), calls_to(tree, "feedback")
    assert len(logs.query(LogQuery(prompt=PROMPT))) == logs_before + len(log_calls)
    for call in log_calls:
        name = assigned_name(tree, call)
        if name is not None:
            entry = logs.get(namespace[name])
            assert (entry.prompt, entry.input, entry.output) == tuple(
                value(a, namespace) for a in (call.args[0], call.args[2], call.args[3])
            )
    for call in feedback_calls:
        entry = logs.get(value(call.args[0], namespace))
        expected = {k.arg: value(k.value, namespace) for k in call.keywords if k.arg}
        assert entry.feedback is not None and entry.feedback.label == expected.get("label", entry.feedback.label)


# -- yaml blocks ------------------------------------------------------------------------------------------------
def check_spec(data: dict[str, Any], folder: Path) -> None:
    spec = write_spec(data, folder / "spec.yaml")
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0 and result.stdout.startswith("ok "), result.output


def run_yaml(block: Block, env: Env) -> None:
    data = yaml.safe_load(block.text)
    folder = env.folder / "specs" / f"line-{block.line}"
    if isinstance(data, list):  # CI steps
        assert all("run" in step for step in data), data
        for step in data:
            for command in shell_commands(step["run"]):
                run_command(command, env)
    elif "task" in data:
        check_spec(data, folder)
    else:  # a section to add to the spec shown before it
        base = [d for b, d in spec_blocks() if b.line < block.line]
        assert base, f"README.md:{block.line}: a spec section before any spec"
        check_spec({**base[-1], **data}, folder)


# -- the tests --------------------------------------------------------------------------------------------------
def test_every_fenced_block_is_one_this_file_runs():
    assert {b.lang for b in BLOCKS} <= {"bash", "python", "yaml"}, [(b.line, b.lang) for b in BLOCKS]
    assert {b.lang for b in BLOCKS} == {"bash", "python", "yaml"}  # the parser still finds each kind


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line{b.line}-{b.lang}" for b in BLOCKS])
def test_readme_block(block: Block, readme: Env):
    if block.lang == "bash":
        for command in shell_commands(block.text):
            run_command(command, readme)
    elif block.lang == "yaml":
        run_yaml(block, readme)
    else:
        run_python(block, readme, readme.server_url)
        run_python(block, readme, "sqlite:///.optimize/optimize.db")  # the README's store URL, in the folder


def inline_commands(text: str) -> list[str]:
    """``optimize ...`` in inline code outside the fenced blocks (the commands table, the prose)."""
    return re.findall(r"`(optimize [^`]+)`", FENCE.sub("", text))


def named_commands(span: str) -> list[Any]:
    """The commands an inline ``optimize ...`` names: its subcommand words (``registry list/show/diff`` names
    three), up to the first argument."""
    command = CLI
    words: list[str] = []
    for word in span.replace("\\|", "|").split()[1:]:
        if not subcommands(command) or not re.fullmatch(r"[a-z][a-z-]*(/[a-z][a-z-]*)*", word):
            break
        missing = [w for w in word.split("/") if w not in subcommands(command)]
        assert not missing, f"README.md: `{span}`: there is no `optimize {' '.join([*words, missing[0]])}`"
        if "/" in word:
            return [subcommands(command)[w] for w in word.split("/")]
        words.append(word)
        command = subcommands(command)[word]
    return [command]


def test_every_inline_command_exists_with_the_options_it_shows():
    spans = inline_commands(README.read_text())
    assert len(spans) >= 10, spans
    for span in spans:
        options = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", span))
        for command in named_commands(span):
            assert command is not CLI, f"README.md: `{span}` names no command"
            assert options <= options_of(command), f"README.md: `{span}`: no {sorted(options - options_of(command))}"


def test_every_option_a_command_section_names_is_one_of_that_command():
    """A section titled with a command (``## Optimize: `optimize run` ``) names its options inline."""
    sections = re.split(r"\n(?=## )", FENCE.sub("", README.read_text()))
    checked = 0
    for section in sections:
        title = section.splitlines()[0]
        named = inline_commands(title)
        if len(named) != 1:
            continue
        (command,) = named_commands(named[0])
        options = set(re.findall(r"`(--[a-z][\w-]*)", section))
        assert options <= options_of(command), f"{title}: {sorted(options - options_of(command))}"
        checked += len(options)
    assert checked >= 5


@pytest.mark.parametrize("spec", experiment_specs(), ids=lambda p: p.parent.name)
def test_every_experiment_spec_validates(spec: Path):
    out = validate(spec.relative_to(spec.parent), cwd=spec.parent)  # as a user runs it, from the spec's folder
    assert out.returncode == 0 and out.stdout.startswith("ok "), out.stdout + out.stderr
