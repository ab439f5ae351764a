"""The confirmation slice: train cases set aside before the search re-score its shortlist, so that a
configuration that only fits the validation rows does not win; the search never sees those cases."""

from __future__ import annotations

import asyncio

from promptopt.cache import NullCache
from promptopt.engine import ExperimentRole, Services
from promptopt.models import ScriptedBackend
from promptopt.search import RunOptions, SearchRun
from promptopt.store import get_store
from tests.search.helpers import loaded_and_data, truth, write_spec

SEARCH = {"instructions": {"variants": ["LUCKY: decide.", "STEADY: decide."]}}


def overfit_backend(validation_texts: set[str]) -> ScriptedBackend:
    """LUCKY is right on exactly the validation cases and wrong elsewhere; STEADY is right on 9 cases in 10
    everywhere; the spec's instruction is always wrong."""

    def answer(request) -> str:
        system, text = request.messages[0]["content"], request.messages[-1]["content"]
        right = truth(text)
        wrong = "negative" if right == "positive" else "positive"
        if system.startswith("LUCKY"):
            return right if text in validation_texts else wrong
        if system.startswith("STEADY"):
            return wrong if int(text.split()[-1]) % 10 == 0 else right
        return wrong

    return ScriptedBackend(answer)


def run(tmp_path, confirm: dict | None):
    search = {**SEARCH, **({"confirm": confirm} if confirm else {})}
    loaded, dataset = loaded_and_data(write_spec(tmp_path, n=80, search=search, budget={"trials": 6}))
    backend = overfit_backend({c.input["text"] for c in dataset.validation.cases})
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    searching = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=RunOptions(sampler="grid", seed=0, promote=False),
        services=Services(backend=backend, cache=NullCache(), records=store),
    )
    return asyncio.run(searching.run()), searching, store


def test_without_confirmation_the_validation_overfit_wins(tmp_path):
    result, _, _ = run(tmp_path, None)
    assert result.best.config["messages"][0]["content"].startswith("LUCKY")
    assert result.best.validation_score == 1.0 and result.best.test_score < 0.2
    assert result.validation_test_gap > 0.8


def test_the_confirmation_slice_picks_the_configuration_that_holds(tmp_path):
    result, searching, store = run(tmp_path, {"cases": 10, "shortlist": 3})
    assert result.best.config["messages"][0]["content"].startswith("STEADY")
    assert result.best.test_score >= 0.8 and abs(result.validation_test_gap) < 0.2
    shortlisted = [c for c in result.leaderboard if c.confirmation_score is not None]
    assert len(shortlisted) == 3
    lucky = next(c for c in shortlisted if c.config["messages"][0]["content"].startswith("LUCKY"))
    assert lucky.validation_score == 1.0 and lucky.confirmation_score < 0.2
    experiments = store.list_experiments(run_id=result.run_id, limit=100)
    confirms = [e for e in experiments if e.role is ExperimentRole.CONFIRM]
    assert sorted(e.trial_number for e in confirms) == sorted(c.trial for c in shortlisted)
    assert all(e.split == "confirm" and e.summary.rows == 10 for e in confirms)


def test_the_search_never_sees_the_confirmation_cases(tmp_path):
    result, searching, store = run(tmp_path, {"cases": 10, "shortlist": 2})
    confirm_texts = {c.input["text"] for c in searching.dataset.confirm.cases}
    assert len(confirm_texts) == 10 and not confirm_texts & {c.input["text"] for c in searching.dataset.train.cases}
    for e in store.list_experiments(run_id=result.run_id, limit=100):
        rows = {r.input["text"] for r in store.get_rows(e.id)}
        assert bool(rows & confirm_texts) == (e.role is ExperimentRole.CONFIRM), e.role
    # The budget set the confirmation evals aside with the verdict's.
    assert searching.plan.verdict_calls == (3 * len(searching.dataset.test) + 2 * 10)
