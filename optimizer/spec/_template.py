"""Sandboxed rendering of ``{{variable}}`` placeholders; an unknown variable is an error, never an empty string."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateSyntaxProblem(ValueError):
    """The template text cannot be parsed."""


@lru_cache(maxsize=4096)
def _compile(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from exc


def template_variables(source: str) -> frozenset[str]:
    """Names of the top-level variables a template reads (``{{text}}`` -> ``{"text"}``).

    Example:
        >>> sorted(template_variables("Review: {{text}} ({{ stars }} stars)"))
        ['stars', 'text']
    """
    try:
        return frozenset(meta.find_undeclared_variables(_ENV.parse(source)))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateSyntaxProblem(f"template syntax error on line {exc.lineno}: {exc.message}") from exc


def render_template(source: str, variables: Mapping[str, Any]) -> str:
    """Render ``source`` with ``variables``.

    Raises:
        KeyError: a variable the template reads is absent (message names it).
        TemplateSyntaxProblem: the template does not parse.

    Example:
        >>> render_template("Review: {{text}}", {"text": "A lovely film."})
        'Review: A lovely film.'
        >>> render_template("Review: {{text}}", {})
        Traceback (most recent call last):
        KeyError: "'text' is undefined"
    """
    try:
        return _compile(source).render(**variables)
    except jinja2.UndefinedError as exc:
        raise KeyError(str(exc.message)) from exc
