"""The designed start: after the baseline, the spec's instruction with the most examples (label-balanced where
that pool exists) and a constrained output where that is searched; nothing when no dimension offers a value."""

from promptopt.config import Example, PromptConfig
from promptopt.search_spaces import SearchSpace
from promptopt.search_spaces._dimensions import ConstrainedDimension, InstructionDimension, TemperatureDimension
from promptopt.search_spaces._fewshot import FewShotDimension

BASE = PromptConfig(
    model="fake/m", messages=({"role": "system", "content": "Label it."}, {"role": "user", "content": "{{text}}"})
)
POOL = tuple(Example(input={"text": f"t{i}"}, output=("a", "b", "c")[i % 3]) for i in range(9))


def test_the_design_point_is_the_spec_instruction_with_every_label_shown_and_constrained_output():
    space = SearchSpace(
        BASE,
        (
            InstructionDimension(("Label it.", "Other.")),
            FewShotDimension(3, {"random": POOL, "balanced": POOL}, seeds=2),
            ConstrainedDimension((False, True)),
            TemperatureDimension((0.0, 0.7)),
        ),
    )
    [point] = space.design()
    assert point == space.baseline() | {"fewshot_k": 3, "fewshot_strategy": "balanced", "constrained": True}
    config = space.config(point)
    assert config.messages[0].content == "Label it." and config.params.temperature == 0.0
    assert sorted(e.output for e in config.examples) == ["a", "b", "c"] and config.constrained


def test_without_balanced_examples_it_takes_bootstrapped_ones_and_leaves_unsearched_choices_alone():
    space = SearchSpace(
        BASE, (FewShotDimension(2, {"random": POOL, "bootstrapped": POOL[:4]}, seeds=1), ConstrainedDimension((False,)))
    )
    assert space.design() == [space.baseline() | {"fewshot_k": 2, "fewshot_strategy": "bootstrapped"}]


def test_a_space_without_examples_or_constraint_has_no_design_point():
    space = SearchSpace(BASE, (InstructionDimension(("Label it.", "Other.")), TemperatureDimension((0.0, 0.7))))
    assert space.design() == []
