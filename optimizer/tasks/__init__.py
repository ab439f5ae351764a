"""Tasks as code: a plain Python function that calls named prompts, evaluated and searched as one task.

A spec's ``task.function`` names ``async def f(input: dict, prompts: Prompts) -> output`` (a plain function is
allowed too); ``await prompts.<name>(**variables)`` renders that prompt of ``task.prompts`` and sends it
through the eval engine. Every call is recorded as a :class:`Span` of the row's trace.

Example::

    async def rewrite_then_classify(input, prompts):
        question = await prompts.rewrite(text=input["text"])
        return (await prompts.classify(text=question.text)).value
"""

from promptopt.tasks._agent import AgentResult, run_agent
from promptopt.tasks._function import code_hash, importable_from, load_function
from promptopt.tasks._isolate import IsolatedFunction, IsolatedTaskError, exit_reason
from promptopt.tasks._prompts import BoundPrompt, PromptCaller, Prompts, TaskFunction
from promptopt.tasks._trace import PromptReply, Span, output_text

__all__ = [
    "AgentResult",
    "BoundPrompt",
    "IsolatedFunction",
    "IsolatedTaskError",
    "PromptCaller",
    "PromptReply",
    "Prompts",
    "Span",
    "TaskFunction",
    "code_hash",
    "exit_reason",
    "importable_from",
    "load_function",
    "output_text",
    "run_agent",
]
