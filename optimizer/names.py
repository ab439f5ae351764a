"""How prompts are named: the one rule for a prompt's name, a label, a version number and a log id, and the
default label.

The spec, the registry, the HTTP API, the logs, the schedules and the SDK all check against these, so a name one
of them accepts is accepted by every other. Light on purpose (``re`` and pydantic only): the SDK imports it.

Example:
    >>> is_prompt_name("support-triage"), is_label("Production")
    (True, False)
    >>> from pydantic import BaseModel
    >>> class Ref(BaseModel):
    ...     name: PromptName
    ...     label: Label = DEFAULT_LABEL
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"  # the spec's task.name, which names the prompt
LABEL_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
LOG_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"  # ids of logs and feedback entries, chosen by the client
MAX_VERSION = 2**31 - 1  # versions are 32-bit integers on both store backends
DEFAULT_LABEL = "production"  # what a lookup without label or version reads, and what promotion moves

PromptName = Annotated[str, Field(pattern=NAME_PATTERN)]
Label = Annotated[str, Field(pattern=LABEL_PATTERN)]
LogId = Annotated[str, Field(pattern=LOG_ID_PATTERN)]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION)]

_NAME = re.compile(NAME_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)
_LOG_ID = re.compile(LOG_ID_PATTERN)


def is_prompt_name(value: object) -> bool:
    """Whether ``value`` is a prompt name: letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
    digit, at most 100 characters."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def is_label(value: object) -> bool:
    """Whether ``value`` is a label: lower-case letters, digits, ``_``, ``.`` and ``-``, starting with a letter
    or digit, at most 64 characters (``production``, ``canary-2``)."""
    return isinstance(value, str) and _LABEL.fullmatch(value) is not None


def is_log_id(value: object) -> bool:
    """Whether ``value`` is the id of a log or feedback entry: letters, digits, ``_``, ``.``, ``:`` and ``-``,
    starting with a letter or digit, at most 128 characters."""
    return isinstance(value, str) and _LOG_ID.fullmatch(value) is not None


def is_version(value: object) -> bool:
    """Whether ``value`` is a version number: a whole number from 1 to :data:`MAX_VERSION` (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_VERSION
