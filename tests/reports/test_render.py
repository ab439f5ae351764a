"""Markdown and HTML renderings of a real run: what they show, and that user text never becomes markup."""

import html
import json
import re

import pytest

from promptopt.reports import build_run_report, render_html, render_markdown
from promptopt.reports._markdown import cell
from tests.reports.helpers import PAYLOAD, make_run


@pytest.fixture(scope="module")
def page(finished):
    return render_html(finished[2])


def test_markdown_has_the_verdict_the_top_five_and_the_case_counts(finished):
    result, _, report = finished
    md = render_markdown(report)
    lo, hi = result.lift_ci95
    assert (
        f"Lift on the held-out test split: {result.lift:+.4f}** (95% CI {lo:+.4f} .. {hi:+.4f}), "
        f"p = {result.p_value:.4f}" in md
    )
    table = [line for line in md.splitlines() if re.match(r"^\| \d+ \| \d+", line)]
    assert len(table) == 5
    for line, cand in zip(table, result.leaderboard[:5], strict=True):
        rank, trial = re.match(r"^\| (\d+) \| (\d+)", line).groups()
        assert int(trial) == cand.trial
        assert f"{cand.validation_score:.3f}" in line
    d = report.case_diff
    assert f"{d.improved} improved, {d.regressed} regressed, {d.unchanged} unchanged" in md
    assert "<details><summary>regressed: first" in md


def test_markdown_escapes_what_would_break_a_table_or_inject_markup(finished):
    md = render_markdown(finished[2])
    assert "<script>" not in md and "<b>positive</b>" not in md and "&lt;b&gt;" in md
    assert cell("a | b\nc `d` <e>") == "a \\| b c \\`d\\` &lt;e&gt;"
    assert len(cell("x" * 500)) == 80


def test_html_is_one_offline_file_with_plotly_inlined_once(page):
    assert len(re.findall(r"plotly\.js v\d", page)) == 1
    assert page.count("var fig = JSON.parse(el.textContent)") == 1  # one loop draws every figure
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=", page, re.I), "an external resource"
    assert "cdn." not in page.split("<script>", 1)[0]
    figures = re.findall(r'<script type="application/json" data-figure="fig-(\w+)">(.*?)</script>', page, re.S)
    assert {name for name, _ in figures} == {"history", "by_cost", "by_calls", "importance", "pareto", "models"}
    for name, body in figures:
        fig = json.loads(body)
        assert fig["data"], name
        assert f'id="fig-{name}"' in page


def test_html_escapes_inputs_and_outputs(page, finished):
    assert PAYLOAD not in page and "document.title='PWNED'</script>" not in page
    assert "<b>positive</b>" not in page and "&lt;b&gt;positive&lt;/b&gt;" in page
    assert PAYLOAD in html.unescape(page), "the payload is shown, as text"
    # and inside the figures' JSON nothing can close the <script> element early
    for body in re.findall(r'data-figure="fig-\w+">(.*?)</script>', page, re.S):
        assert "<" not in body


def test_html_lists_every_leaderboard_row_and_every_paired_case(page, finished):
    _, _, report = finished
    trials = [int(t) for t in re.findall(r'<tr data-trial="(\d+)">', page)]
    assert trials == [r.trial for r in report.leaderboard]
    kinds = re.findall(r'<tr class="\w+" data-kind="(\w+)">', page)
    assert kinds == [c.kind for c in report.case_diff.cases]


def test_paid_figures_are_labelled_apart_from_what_a_configuration_costs_and_takes(page, finished):
    _, _, report = finished
    win = report.winner
    head = page.split('<table id="leaderboard">', 1)[1].split("</thead>", 1)[0]
    assert [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head)][6:11] == [
        "cost $ / row",
        "latency s / row",
        "paid $",
        "paid mean latency s",
        "paid calls",
    ]
    cells = page.split(f'<tr data-trial="{win.trial}">', 1)[1].split("</tr>", 1)[0]
    values = re.findall(r'<td class="num">([^<]*)</td>', cells)[4:8]
    assert values == [
        f"{win.cost_per_row_usd:.6f}",
        f"{win.latency_per_row_s:.3f}",
        f"{win.cost_usd:.4f}",
        f"{win.mean_latency_s:.3f}",
    ]
    md = render_markdown(report)
    assert "| cost $/row | latency s/row | paid $ | paid calls |" in md
    assert f"| paid $ (validation) | {report.baseline.cost_usd:.4f} | {win.cost_usd:.4f} |" in md
    assert f"| cost $ per row | {report.baseline.cost_per_row_usd:.6f} | {win.cost_per_row_usd:.6f} |" in md


def test_a_two_objective_run_renders_its_own_front(tmp_path):
    result, store = make_run(tmp_path, trials=6, objectives=("score", "cost"))
    report = build_run_report(store, result.run_id)
    assert report.directions == ("maximize", "minimize")
    assert {r.trial for r in report.leaderboard if r.pareto} == {c.trial for c in result.pareto}
    page = render_html(report)
    assert 'id="fig-history"' in page and 'id="fig-pareto"' in page
