"""The docstring examples in the scorers package run and hold."""

import doctest

import pytest

from promptopt.scorers import _factory, _judge, _numeric, _text


@pytest.mark.parametrize("module", [_factory, _judge, _numeric, _text], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
