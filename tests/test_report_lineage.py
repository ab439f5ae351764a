"""The run report's instruction lineage (candidates, their parents, how trials scored them) and rejected
proposals, built from a real store: the run record, its kept search space, its Optuna study and its evals."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from pydantic import ValidationError

from promptopt.config import PromptConfig
from promptopt.engine import EvalSummary, ExperimentRole
from promptopt.reports import RunReport, build_run_report, render_html, render_markdown
from promptopt.reports._markdown import chain
from promptopt.reports._values import LineageNode
from promptopt.search import optuna_storage_url
from promptopt.search_spaces import InstructionDimension, ModelDimension, RejectedProposal, SearchSpace
from promptopt.store import Store, get_store

BASE = PromptConfig.model_validate(
    {"messages": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}], "model": "m"}
)
REFLECTED = "Think about the <b>sarcasm</b> & answer with one label."
LEAKED = "<script>document.title='PWNED'</script> Answer in French."
INSTRUCTIONS = InstructionDimension(
    ("Label it.", "Label it. Reply with one word.", REFLECTED, "Label it, carefully."),
    ("spec", "operator:format", "reflect:cases", "reflect:fake/m"),
    parents=(None, None, 1, 2),
    rejected=(RejectedProposal(LEAKED, "reflect:cases", "changes the output language", 2),),
    growing=True,
    generations=2,
)
# (instruction, validation score or None for a failed trial, duplicate of): trial numbers are the positions.
TRIALS = [
    ({"instruction": i}, value, twin)
    for i, value, twin in [(0, 0.5, None), (1, 0.6, None), (2, 0.9, None), (2, 0.7, None), (1, 0.6, 1), (1, None, None)]
]
PREPASS, REFLECTION, PER_TRIAL = (0.01, 4), (0.02, 3), (0.001, 2)
PROPOSALS = (0.03, 5)  # the proposer's calls that built the space, recorded with it


def _summary(usd: float, calls: int) -> EvalSummary:
    return EvalSummary(
        rows=calls,
        scores={},
        objective=None,
        model_calls=calls,
        cache_hits=0,
        errors=0,
        task_tokens=0,
        scorer_tokens=0,
        cost_usd=usd,
        task_cost_usd=usd,
        scorer_cost_usd=0.0,
        mean_latency_s=None,
        wall_s=0.0,
    )


def _eval(store: Store, run_id: str, role: ExperimentRole, trial: int | None, paid: tuple[float, int]) -> None:
    experiment_id, _ = store.begin_experiment(
        key=f"{run_id}-{role}-{trial}",
        name="reviews",
        config={},
        config_hash=f"c{trial}",
        model="m",
        split="train" if role is not ExperimentRole.TRIAL else "validation",
        dataset_hash="d",
        run_id=run_id,
        trial_number=trial,
        role=role,
    )
    store.finish_experiment(experiment_id, _summary(*paid))


def _run(store: Store, space: SearchSpace | None, trials: list[tuple[dict, float | None, int | None]]) -> str:
    """A running run whose study holds ``trials`` (a completed one has a trial eval), a pre-pass and a
    reflection; its space kept as the search keeps it."""
    run = store.begin_run(key=f"k{space is None}", name="reviews", spec={}, settings={}, dataset_hash="d")
    if space is not None:
        store.save_run_space(run.id, space.to_json(), calls=PROPOSALS[1], usd=PROPOSALS[0])
    dist = space.distributions() if space else {"instruction": CategoricalDistribution([0, 1, 2])}
    study = optuna.create_study(study_name=f"run-{run.id}", storage=optuna_storage_url(str(store.url)))
    for number, (params, value, twin) in enumerate(trials):
        attrs = {"baseline": True} if number == 0 else {"duplicate_of": twin} if twin is not None else {}
        done = value is not None
        study.add_trial(
            create_trial(
                state=TrialState.COMPLETE if done else TrialState.FAIL,
                value=value,
                params=params,
                distributions=dist,
                user_attrs=attrs,
            )
        )
        if done and twin is None:
            _eval(store, run.id, ExperimentRole.TRIAL, number, PER_TRIAL)
    _eval(store, run.id, ExperimentRole.PREPASS, None, PREPASS)
    _eval(store, run.id, ExperimentRole.REFLECTION, 2, REFLECTION)
    return run.id


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lineage")
    store = get_store(f"sqlite:///{tmp / 's.db'}")
    report = build_run_report(store, _run(store, SearchSpace(BASE, (INSTRUCTIONS,)), TRIALS))
    return report, render_html(report), render_markdown(report)


def test_lineage_has_every_candidate_with_its_parent_and_scores(evolved):
    report, _, _ = evolved
    nodes = [(n.index, n.text, n.source, n.parent, n.trials, n.best) for n in report.lineage]
    assert nodes == [
        (0, "Label it.", "spec", None, 1, 0.5),
        (1, "Label it. Reply with one word.", "operator:format", None, 1, 0.6),  # duplicate and failed left out
        (2, REFLECTED, "reflect:cases", 1, 2, 0.9),
        (3, "Label it, carefully.", "reflect:fake/m", 2, 0, None),
    ]
    assert report.ancestry(3) == (1, 2, 3) and report.ancestry(0) == (0,)
    assert report.winner_trial == 2 and report.winner_instruction == 2


def test_rejected_proposals_keep_source_reason_and_parent(evolved):
    report, _, _ = evolved
    assert [(r.text, r.source, r.reason, r.parent) for r in report.rejected_instructions] == [
        (LEAKED, "reflect:cases", "changes the output language", 2)
    ]


def test_cost_curve_starts_after_proposals_prepass_and_reflection(evolved):
    report, _, _ = evolved
    first = report.progress[0]
    assert first.trial == 0
    assert first.cumulative_usd == pytest.approx(PROPOSALS[0] + PREPASS[0] + REFLECTION[0] + PER_TRIAL[0])
    assert first.cumulative_calls == PROPOSALS[1] + PREPASS[1] + REFLECTION[1] + PER_TRIAL[1]


def test_html_shows_the_chain_scores_and_reason_escaped(evolved):
    _, html, _ = evolved
    section = html[html.index('<h2 id="lineage">') : html.index("<h2>Test cases")]
    rows = section.split('<tr data-index="')[1:]
    assert [r.split('"')[0] for r in rows] == ["0", "1", "2", "3"]
    assert 'data-parent="1"' in rows[2] and "1 → 2 → 3" in rows[3]
    assert "reflect:cases" in rows[2] and "0.900" in rows[2] and 'class="badge win"' in rows[2]
    assert 'class="muted"' in rows[3] and "not tried" in rows[3] and 'class="muted"' not in rows[2]
    assert "Think about the &lt;b&gt;sarcasm&lt;/b&gt; &amp; answer" in rows[2]
    assert "changes the output language" in section and "candidate #2" in section
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;&lt;/script&gt;" in section
    assert "<script>document.title" not in html


def test_markdown_shows_the_chain_scores_and_reason(evolved):
    _, _, md = evolved
    assert "### Instruction lineage: 4 candidates (3 tried), 1 rejected proposal" in md
    lines = md[md.index("### Instruction lineage") :].splitlines()
    row = next(line for line in lines if line.startswith("| #2 (winner) |"))
    assert row.split(" | ")[1:5] == ["1 → 2", "reflect:cases", "2", "0.900"]
    assert "Think about the &lt;b&gt;sarcasm&lt;/b&gt; &amp; answer" in row
    assert next(line for line in lines if line.startswith("| #3 |")).split(" | ")[1:5] == [
        "1 → 2 → 3",
        "reflect:fake/m",
        "0",
        "–",
    ]
    rejected = next(line for line in lines if "changes the output language" in line)
    assert rejected.startswith("| candidate #2 | reflect:cases |") and "<script>" not in rejected


@pytest.mark.parametrize("space", [None, SearchSpace(BASE, (ModelDimension(("m", "big")),))], ids=["none", "model"])
def test_run_without_instruction_candidates_has_no_lineage(tmp_path, space):
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    name, values = ("model", ["m", "big"]) if space else ("instruction", [0, 1])
    report = build_run_report(
        store, _run(store, space, [({name: v}, s, None) for v, s in zip(values, (0.5, 0.7), strict=True)])
    )
    assert (report.lineage, report.rejected_instructions, report.winner_instruction) == ((), (), None)
    assert [p.value for p in report.progress] == [0.5, 0.7]  # the report itself was built
    assert "Instruction lineage" not in render_markdown(report)
    assert "No instruction lineage" in render_html(report)


def test_a_report_kept_before_lineage_still_validates(evolved):
    report, _, _ = evolved
    old = report.model_dump(mode="json", exclude={"lineage", "rejected_instructions"})
    again = RunReport.model_validate(old)
    assert (again.lineage, again.rejected_instructions) == ((), ())
    assert RunReport.model_validate_json(report.model_dump_json()) == report


def test_lineage_nodes_check_their_invariants(evolved):
    report, _, _ = evolved
    with pytest.raises(ValidationError, match="a child follows its parent"):
        LineageNode(index=1, text="t", source="reflect:cases", parent=1)
    with pytest.raises(ValidationError, match="1 trial"):
        LineageNode(index=0, text="t", source="spec", trials=1)
    with pytest.raises(ValidationError, match="candidates 0, 1, 2"):
        RunReport.model_validate(report.model_dump() | {"lineage": report.lineage[1:]})


def test_long_lineage_stays_readable(tmp_path):
    texts = tuple(f"Instruction {i}: " + "be precise and brief. " * 20 for i in range(35))
    parents = (None, *range(34))
    dim = InstructionDimension(texts, ("spec", *["reflect:cases"] * 34), parents=parents, growing=True)
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    report = build_run_report(
        store, _run(store, SearchSpace(BASE, (dim,)), [({"instruction": i}, v, None) for i, v in ((0, 0.5), (34, 0.8))])
    )
    assert report.ancestry(34) == tuple(range(35)) and report.lineage[34].best == 0.8
    assert chain(report.ancestry(34)) == "0 → … → 32 → 33 → 34"
    html = render_html(report)
    summary = html.split('<tr data-index="34"')[1].split("<summary")[1]
    shown = summary.split(">", 1)[1].split("</summary>")[0]
    assert len(shown) == 100 and shown.endswith("…")
    assert f'title="{texts[34]}"' in summary and f"<pre>{texts[34]}</pre>" in summary
