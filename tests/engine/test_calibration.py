"""Calibrated label scoring: the bias fit, the eval that fits it once through the cache, the search that keeps it
for the test split, the spec's checks, and the stability of every hash written before it existed."""

from __future__ import annotations

import asyncio
import math

import pytest
import yaml

from promptopt.cache import DiskResponseCache, cache_key
from promptopt.config import LabelCalibration
from promptopt.engine import Evaluator, Services, answer_text, fit_label_bias, request_for
from promptopt.errors import InputError
from promptopt.models import Constraint, ModelRequest, ModelResponse, ScriptedBackend
from promptopt.search import RunOptions, SearchRun, resolve_sampler
from promptopt.search_spaces import ConstrainedDimension, SearchSpace, dimension_from_json
from promptopt.spec import load_spec
from promptopt.store import get_store
from tests.engine.helpers import Exact, label_config, split_of
from tests.search.helpers import loaded_and_data, write_spec

LABELS = ("positive", "negative")


def biased_scores(request: ModelRequest) -> ModelResponse | str:
    """A model that prefers "positive" for every input by 2 nats, and still knows which inputs are good: the
    raw label choice is always positive; removing the bias leaves the signal."""
    text = request.messages[-1]["content"]
    if request.constraint is None or not request.constraint.label_scores:
        return "positive"
    signal = 1.0 if "good" in text else -1.0
    scores = {"positive": -0.5 + signal + 2.0, "negative": -0.5 - signal}
    return ModelResponse(text=max(scores, key=scores.__getitem__), label_logprobs=scores)


REVIEWS = [(f"good film {i}", "positive") for i in range(5)] + [(f"bad film {i}", "negative") for i in range(5)]


def test_the_bias_makes_the_mean_calibrated_distribution_the_prior():
    scores = [{"a": math.log(0.9), "b": math.log(0.1)}, {"a": math.log(0.6), "b": math.log(0.4)}]
    for prior in ({}, {"a": 0.75, "b": 0.25}):
        bias = fit_label_bias(scores, ["a", "b"], prior)
        calibrated = []
        for row in scores:
            weights = {k: math.exp(v - bias[k]) for k, v in row.items()}
            calibrated.append({k: w / sum(weights.values()) for k, w in weights.items()})
        # Batch calibration's fixed point is in the log domain: the mean of p/mean(p) * prior is the prior.
        target = prior or {"a": 0.5, "b": 0.5}
        mean_ratio = {k: sum(math.exp(r[k]) for r in scores) / 2 for k in "ab"}
        assert {k: math.exp(-bias[k]) * mean_ratio[k] for k in "ab"} == pytest.approx(target)
        assert calibrated[0]["a"] > calibrated[1]["a"]  # the order of the inputs is kept
    assert fit_label_bias([], ["a", "b"]) == {}


def test_decide_and_answer_text_take_the_best_calibrated_label():
    calibration = LabelCalibration(bias={"positive": 2.0, "negative": 0.0})
    assert calibration.decide({"positive": -0.5, "negative": -1.0}) == "negative"
    config = label_config(constrained=True, calibration=calibration)
    response = ModelResponse(text="positive", label_logprobs={"positive": -0.5, "negative": -1.0})
    assert answer_text(config, response) == "negative"
    assert answer_text(label_config(), response) == "positive"  # an uncalibrated config reads the text


def test_a_calibrated_eval_fits_once_and_a_second_eval_pays_nothing_and_keeps_the_bias(tmp_path):
    backend = ScriptedBackend(biased_scores)
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    services = Services(backend=backend, cache=DiskResponseCache(tmp_path / "cache"), records=store)
    config = label_config(constrained=True, calibration=LabelCalibration())
    other = split_of([("good one", "positive"), ("good two", "positive")], name="test")

    async def evals():
        evaluator = Evaluator(services)
        plain = label_config(constrained=True)
        raw = await evaluator.run(plain, split_of(REVIEWS), [Exact()], name="t", dataset_hash="d")
        result = await evaluator.run(config, split_of(REVIEWS), [Exact()], name="t", dataset_hash="d")
        sent = len(backend.calls)
        fitted = config.model_copy(update={"calibration": result.calibration})
        again = await evaluator.run(fitted, other, [Exact()], name="t", dataset_hash="d")
        return raw, result, again, len(backend.calls) - sent

    raw, result, again, sent_again = asyncio.run(evals())
    assert raw.summary.objective == pytest.approx(0.5)  # "positive" for everything
    assert result.summary.objective == 1.0
    assert len([c for c in backend.calls if c.constraint and c.constraint.label_scores]) == len(REVIEWS) + 2
    assert result.summary.model_calls == len(REVIEWS)  # the fit's calls are the eval's; its rows were cache hits
    assert result.calibration is not None and result.calibration.fitted
    assert result.calibration.fitted_on == f"validation: {len(REVIEWS)} inputs"
    assert result.calibration.bias["positive"] > result.calibration.bias["negative"]
    stored = store.get_experiment(result.experiment_id)
    assert stored.config["calibration"]["bias"] == result.calibration.bias
    assert again.calibration == result.calibration  # not fitted again on another split's inputs
    assert again.summary.objective == 1.0 and sent_again == 2
    store.dispose()


def test_requests_and_hashes_written_before_calibration_are_unchanged():
    assert "label_scores" not in Constraint(labels=LABELS).model_dump(mode="json")
    assert Constraint(labels=LABELS, label_scores=True).model_dump(mode="json")["label_scores"] is True
    plain = label_config(constrained=True)
    assert "calibration" not in plain.model_dump(mode="json")
    assert plain.hash != label_config(constrained=True, calibration=LabelCalibration()).hash
    request = request_for(plain, {"text": "x"}, 60.0)
    assert request.constraint == Constraint(labels=LABELS)
    scored = request_for(plain.model_copy(update={"calibration": LabelCalibration()}), {"text": "x"}, 60.0)
    assert scored.constraint == Constraint(labels=LABELS, label_scores=True)
    assert cache_key(request, 0) != cache_key(scored, 0)
    # The bias is applied to the response, not sent: configs that differ only by their bias share a cache entry.
    fitted = plain.model_copy(update={"calibration": LabelCalibration(bias={"positive": 1.0, "negative": 0.0})})
    assert cache_key(request_for(fitted, {"text": "x"}, 60.0), 0) == cache_key(scored, 0)


def test_the_constrained_dimension_offers_calibrated_scores_first_and_round_trips():
    dim = ConstrainedDimension((False, True, "calibrated"), prior={"positive": 0.6, "negative": 0.4})
    config = dim.apply(label_config(), {"constrained": "calibrated"})
    assert config.constrained and config.calibration == LabelCalibration(prior={"positive": 0.6, "negative": 0.4})
    assert dim.apply(config, {"constrained": True}).calibration is None
    assert dim.design() == {"constrained": "calibrated"} and dim.region() == {"constrained": ["calibrated"]}
    assert ConstrainedDimension((False, True)).design() == {"constrained": True}
    back = dimension_from_json(dim.to_json())
    assert isinstance(back, ConstrainedDimension) and back.prior == dim.prior and back.choices == dim.choices


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"output": {"type": "text"}}, "scores labels; task.output.type is 'text'"),
        ({"model": "openai/gpt-4o-mini"}, "only the local models give"),
    ],
)
def test_the_spec_refuses_calibration_where_no_label_scores_exist(tmp_path, change, message):
    path = write_spec(tmp_path, search={"constrained": [False, "calibrated"]})
    data = yaml.safe_load(path.read_text())
    data["task"].update(change)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert info.value.field == "search.constrained" and message in str(info.value)


def test_a_search_keeps_the_validation_bias_for_the_test_split(tmp_path):
    def respond(request: ModelRequest) -> ModelResponse | str:
        # Right on every case only when calibrated (the raw choice is always "positive").
        text = request.messages[-1]["content"]
        good = int(text.split()[-1]) % 2 == 1
        if request.constraint is None or not request.constraint.label_scores:
            return "positive"
        scores = {"positive": 1.0 + (1.0 if good else -1.0), "negative": -1.0 if good else 1.0}
        return ModelResponse(text="positive", label_logprobs=scores)

    path = write_spec(
        tmp_path,
        task={
            "name": "cal",
            "model": "local/smollm2-135m",  # never loaded: the scripted backend answers
            "prompt": [{"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"}],
            "output": {"type": "label", "labels": ["positive", "negative"]},
        },
        search={"constrained": [False, True, "calibrated"], "few_shot": {"max_k": 0}},
    )
    loaded, dataset = loaded_and_data(path)
    store = get_store(f"sqlite:///{tmp_path / 's.db'}")
    backend = ScriptedBackend(respond)
    run = SearchRun(
        loaded=loaded,
        dataset=dataset,
        options=RunOptions(seed=0, parallel=1, max_trials=3),  # auto: guided, region start (calibrated offered)
        services=Services(backend=backend, cache=DiskResponseCache(tmp_path / "cache"), records=store),
    )
    result = asyncio.run(run.run())
    assert (run.options.sampler, run.options.start) == ("guided", "region")
    assert result.best.validation_score == 1.0 and result.best.test_score == 1.0
    fitted = result.best.config["calibration"]
    assert fitted["fitted_on"].startswith("validation:") and fitted["bias"]
    tests = [e for e in store.list_experiments(run_id=result.run_id) if e.split == "test"]
    best_test = next(e for e in tests if e.config.get("calibration"))
    assert best_test.config["calibration"] == fitted  # the test eval used the validation bias, not its own fit
    space = SearchSpace.from_json(store.get_run(result.run_id).space)
    assert any(isinstance(d, ConstrainedDimension) and d.prior for d in space.dimensions)
    store.dispose()


def test_auto_picks_the_guided_region_search_only_where_calibrated_scores_are_offered():
    assert resolve_sampler("auto", "baseline", calibrated=True, objectives=1) == ("guided", "region")
    assert resolve_sampler("auto", "baseline", calibrated=False, objectives=1) == ("tpe", "baseline")
    assert resolve_sampler("auto", "baseline", calibrated=True, objectives=2) == ("tpe", "baseline")
    assert resolve_sampler("auto", "screen", calibrated=False, objectives=1) == ("guided", "screen")
    assert resolve_sampler("auto", "designed", calibrated=True, objectives=1) == ("tpe", "designed")
    assert resolve_sampler("random", "baseline", calibrated=True, objectives=1) == ("random", "baseline")


def test_auto_with_a_guided_start_and_two_objectives_is_refused_naming_the_sampler(tmp_path):
    loaded, dataset = loaded_and_data(write_spec(tmp_path))
    services = Services(
        backend=ScriptedBackend(biased_scores),
        cache=DiskResponseCache(tmp_path / "cache"),
        records=get_store(f"sqlite:///{tmp_path / 's.db'}"),
    )
    options = RunOptions(start="region", objectives=("score", "cost"))
    with pytest.raises(InputError) as info:
        SearchRun(loaded=loaded, dataset=dataset, options=options, services=services)
    assert info.value.field == "sampler" and "guided models one objective" in str(info.value)
    assert services.backend.calls == []
