"""`optimize report RUN_ID` in its three formats (the command is registered on a bare typer app here)."""

import json

import typer
from typer.testing import CliRunner

from promptopt.cli import _report
from promptopt.reports import RunReport, render_markdown


def invoke(store, *args):
    app = typer.Typer()
    _report.register(app)
    return CliRunner().invoke(app, [*args, "--store", str(store.url)])


def test_default_is_an_html_file_named_after_the_run(finished, tmp_path, monkeypatch):
    result, store, _ = finished
    monkeypatch.chdir(tmp_path)
    out = invoke(store, "report", result.run_id[:8])
    assert out.exit_code == 0, out.output
    page = (tmp_path / f"report-{result.run_id[:8]}.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and f'<tr data-trial="{result.best.trial}">' in page


def test_markdown_to_stdout_and_json_to_a_file(finished, tmp_path):
    result, store, report = finished
    md = invoke(store, "report", result.run_id, "--format", "markdown")
    assert md.exit_code == 0 and md.stdout == render_markdown(report)
    path = tmp_path / "r.json"
    js = invoke(store, "report", result.run_id, "-f", "json", "-o", str(path))
    assert js.exit_code == 0, js.output
    written = RunReport.model_validate(json.loads(path.read_text()))
    assert written.model_dump(exclude={"generated_at"}) == report.model_dump(exclude={"generated_at"})


def test_unknown_run_and_bad_format(finished):
    _, store, _ = finished
    missing = invoke(store, "report", "0123456789abcdef")
    assert missing.exit_code == 1 and "no run" in missing.output
    bad = invoke(store, "report", "0123456789abcdef", "--format", "pdf")
    assert bad.exit_code == 2
