"""A two-prompt pipeline on SST-2: summarize the review's opinion, then classify the review with the summary
beside it. Plain async Python: each ``await prompts.<name>(...)`` goes through promptopt's engine."""

from __future__ import annotations

from typing import Any

from promptopt.tasks import Prompts


async def summarize_then_classify(input: dict[str, Any], prompts: Prompts) -> str:
    summary = await prompts.summarize(text=input["text"])
    label = await prompts.classify(text=input["text"], summary=summary.text.strip())
    return str(label.value)
