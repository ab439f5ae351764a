"""The application side of the registry: fetch a prompt by name and label (or version) from a promptopt
server or straight from the store, and render it into model-call arguments. A code task's version holds
all its prompts; ``prompt(name)`` gives each.

Light to import: neither importing this package nor looking up a prompt imports litellm, ray, optuna or dspy.

Example:
    >>> from promptopt.sdk import PromptClient
    >>> prompts = PromptClient("http://127.0.0.1:8080")
    >>> kwargs = prompts.get("support-triage", label="production").render(ticket="Wrong invoice")  # doctest: +SKIP
    >>> litellm.completion(**kwargs)  # doctest: +SKIP
    >>> answer = prompts.get("qa-pipeline").prompt("answer")  # doctest: +SKIP
    >>> litellm.completion(**answer.render(question="Where is my parcel?"))  # doctest: +SKIP
"""

from promptopt.names import DEFAULT_LABEL
from promptopt.sdk._client import PromptClient, PromptUnavailable
from promptopt.sdk._log_sender import LoggerStats
from promptopt.sdk._logger import PromptLogger
from promptopt.sdk._prompt import Prompt, PromptRef
from promptopt.sdk._render import call_params, litellm_kwargs, openai_kwargs
from promptopt.sdk._sources import Fetched, HttpSource, PromptSource, PromptSourceError, StoreSource
from promptopt.sdk._task import Complete, TaskRun, run_task
from promptopt.secrets import scrub_record as default_scrub  # the logger's default ``scrub``

__all__ = [
    "Complete",
    "DEFAULT_LABEL",
    "Fetched",
    "HttpSource",
    "LoggerStats",
    "Prompt",
    "PromptClient",
    "PromptLogger",
    "PromptRef",
    "PromptSource",
    "PromptSourceError",
    "PromptUnavailable",
    "StoreSource",
    "TaskRun",
    "call_params",
    "default_scrub",
    "litellm_kwargs",
    "openai_kwargs",
    "run_task",
]
