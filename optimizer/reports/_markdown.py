"""Markdown renderings, compact enough for a pull request comment or a CI step summary."""

from __future__ import annotations

import json
from typing import Any

from promptopt.reports._values import CaseDiff, Estimate, LeaderboardRow, RunReport
from promptopt.stats import format_p
from promptopt.tasks import Span

TOP = 5
EXAMPLES = 3


def render_markdown(report: RunReport, *, top: int = TOP, examples: int = EXAMPLES) -> str:
    """Winner against baseline, the lift with its interval and p-value, the top of the leaderboard and the
    counts of improved and regressed test cases with a few examples of each."""
    r = report
    lines = [
        f"## {cell(r.name)}: prompt optimization run `{r.run_id[:8]}`",
        "",
        f"{r.status}{f' (stopped by {r.stopped_by})' if r.stopped_by else ''}: {r.trial_count} trials "
        f"({r.failed_trials} failed), {len(r.leaderboard)} distinct configurations, {r.model_calls} model "
        f"calls, ${r.cost_usd:.4f} paid" + (f", {r.wall_s:.0f} s" if r.wall_s is not None else "") + ".",
        "",
    ]
    lines += _verdict(r) + [""] + _versus(r) + [""] + _top(r, r.leaderboard[:top])
    if r.fine_tunes:
        lines += [""] + _fine_tunes(r)
    if r.lineage:
        lines += [""] + _lineage(r)
    if r.case_diff is not None:
        lines += [""] + _cases(r, examples)
    return "\n".join(lines).rstrip() + "\n"


def _verdict(r: RunReport) -> list[str]:
    if r.lift is None:
        if r.winner_trial is not None and r.winner_trial == r.baseline_trial:
            return ["**No lift:** the baseline (the spec as written) is the best configuration found."]
        return [f"**No held-out verdict** (the run is {r.status})."]
    ci = f" (95% CI {r.lift_ci95[0]:+.4f} .. {r.lift_ci95[1]:+.4f})" if r.lift_ci95 else ""
    p = f", {format_p(r.p_value)}" if r.p_value is not None else ""
    mark = "✅" if r.lift > 0 and r.lift_ci95 and r.lift_ci95[0] > 0 else "⚠️" if r.lift <= 0 else "➖"
    return [
        f"{mark} **Lift on the held-out test split: {r.lift:+.4f}**{ci}{p} "
        f"(trial {r.winner_trial} against the baseline, trial {r.baseline_trial})."
    ]


def _versus(r: RunReport) -> list[str]:
    base, win = r.baseline, r.winner
    if base is None or win is None:
        return []
    lines = [
        "| | baseline | winner |",
        "|---|---|---|",
        f"| trial | {base.trial} | {win.trial} |",
        f"| configuration | {cell(base.description)} | {cell(win.description)} |",
        f"| validation (95% CI) | {estimate(base.validation)} | {estimate(win.validation)} |",
        f"| test (95% CI) | {estimate(base.test)} | {estimate(win.test)} |",
        f"| cost $ per row | {_usd(base.cost_per_row_usd)} | {_usd(win.cost_per_row_usd)} |",
        f"| latency s per row | {_num(base.latency_per_row_s)} | {_num(win.latency_per_row_s)} |",
        f"| paid $ (validation) | {base.cost_usd:.4f} | {win.cost_usd:.4f} |",
        f"| paid mean latency s | {_num(base.mean_latency_s)} | {_num(win.mean_latency_s)} |",
    ]
    return lines


def _top(r: RunReport, rows: tuple[LeaderboardRow, ...]) -> list[str]:
    lines = [
        f"### Top {len(rows)} of {len(r.leaderboard)}",
        "",
        "| rank | trial | configuration | validation (95% CI) | test | cost $/row | latency s/row | paid $ | "
        "paid calls |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        tags = " (winner)" if row.winner else ""
        tags += " (baseline)" if row.baseline else ""
        if row.one_answer:
            tags += f" (one answer on {row.top_answer_share:.0%} of validation rows)"
        if (job := r.fine_tune_of(row.model)) is not None:
            tags += f" (fine-tune {job.name}: {training(job.train_s, job.reused)})"
        lines.append(
            f"| {row.rank} | {row.trial}{tags} | {cell(row.description)} | {estimate(row.validation)} | "
            f"{estimate(row.test)} | {_usd(row.cost_per_row_usd)} | {_num(row.latency_per_row_s)} | "
            f"{row.cost_usd:.4f} | {row.model_calls} |"
        )
    return lines


def training(train_s: float, reused: bool) -> str:
    """A fine-tune's training cost in this run: ``177 s training`` or ``trained by an earlier run``."""
    return "trained by an earlier run" if reused else f"{train_s:.0f} s training"


def _fine_tunes(r: RunReport) -> list[str]:
    lines = [
        f"### Fine-tuned candidates: {len(r.fine_tunes)}",
        "",
        "| job | model | base | data | rows | epochs | rank | training | trials | best validation |",
        "|---|---|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for f in r.fine_tunes:
        lines.append(
            f"| {cell(f.name)} | `{f.model}` | `{f.base_model}` | {cell(f.data)} | {f.rows} | {_int(f.epochs)} | "
            f"{_int(f.rank)} | {training(f.train_s, f.reused)} | {f.trials} | {_num(f.best)} |"
        )
    return lines


def _lineage(r: RunReport) -> list[str]:
    tried, refused = sum(n.trials > 0 for n in r.lineage), len(r.rejected_instructions)
    lines = [
        f"### Instruction lineage: {len(r.lineage)} candidates ({tried} tried), "
        f"{refused} rejected proposal{'' if refused == 1 else 's'}",
        "",
        "<details><summary>candidates, each with the chain it was written along</summary>",
        "",
        "| candidate | lineage | source | trials | best validation | instruction |",
        "|---:|---|---|---:|---:|---|",
    ]
    for n in r.lineage:
        tag = " (winner)" if r.winner_uses(n) else ""
        name = f"{n.prompt} " if n.prompt else ""
        lines.append(
            f"| {name}#{n.index}{tag} | {chain(r.ancestry(n.index, n.prompt))} | {cell(n.source)} | {n.trials} | "
            f"{_num(n.best)} | "
            f"{cell(n.text)} |"
        )
    lines += ["", "</details>"]
    if r.rejected_instructions:
        lines += ["", "<details><summary>rejected proposals, with the reason</summary>", ""]
        lines += ["| written from | source | reason | proposal |", "|---|---|---|---|"]
        for p in r.rejected_instructions:
            lines.append(f"| {written_from(p.parent)} | {cell(p.source)} | {cell(p.reason)} | {cell(p.text)} |")
        lines += ["", "</details>"]
    return lines


def chain(ancestry: tuple[int, ...], *, keep: int = 3) -> str:
    """A candidate's ancestry as ``0 → 2 → 5``; a long one keeps its root and its last ``keep`` steps."""
    shown = [str(i) for i in ancestry]
    if len(shown) > keep + 2:
        shown = [shown[0], "…", *shown[-keep:]]
    return " → ".join(shown)


def written_from(parent: int | None) -> str:
    return "the spec" if parent is None else f"candidate #{parent}"


def _cases(r: RunReport, examples: int) -> list[str]:
    d = r.case_diff
    assert d is not None
    lines = [
        f"### Test cases: {d.improved} improved, {d.regressed} regressed, {d.unchanged} unchanged "
        f"(of {d.paired_cases} paired)"
    ]
    for kind in ("regressed", "improved"):
        shown = [c for c in d.cases if c.kind == kind][:examples]
        if shown:
            lines += [
                "",
                f"<details><summary>{kind}: first {len(shown)}</summary>",
                "",
                *case_table(shown),
                "",
                "</details>",
            ]
    return lines


def case_table(cases: list[CaseDiff] | tuple[CaseDiff, ...], *, a: str = "baseline", b: str = "winner") -> list[str]:
    lines = [f"| input | expected | {a} output | {b} output | {a} | {b} |", "|---|---|---|---|---:|---:|"]
    for c in cases:
        lines.append(
            f"| {cell(plain(c.input))} | {cell(plain(c.expected))} | {_traced(c.baseline_output, c.baseline_trace)} | "
            f"{_traced(c.winner_output, c.winner_trace)} | {c.baseline_score:.2f} | {c.winner_score:.2f} |"
        )
    return lines


def _traced(output: str | None, trace: tuple[Span, ...]) -> str:
    """An output cell; a code task's trace follows it as ``prompt → answer`` steps."""
    if not trace:
        return cell(output)
    steps = " · ".join(f"{s.prompt} → {s.output if s.error is None else 'error'}" for s in trace)
    return f"{cell(output)} <br>{cell(steps, 160)}"


def cell(value: Any, width: int = 80) -> str:
    """Text safe inside a Markdown table cell: one line, no pipe, no HTML, at most ``width`` characters."""
    text = "" if value is None else " ".join(str(value).split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|").replace("`", "\\`")


def estimate(value: Estimate | None) -> str:
    if value is None:
        return "–"
    if value.ci95 is None:
        return f"{value.mean:.3f}"
    return f"{value.mean:.3f} ({value.ci95[0]:.2f}–{value.ci95[1]:.2f})"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _int(value: int | None) -> str:
    return "–" if value is None else str(value)


def _usd(value: float | None) -> str:
    return "–" if value is None else f"{value:.6f}"  # a call can cost a few millionths of a dollar


def plain(value: Any) -> str:
    """A case's input or expected value as text: a lone string field bare, a string as is, else JSON."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), str):
        return str(next(iter(value.values())))
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
