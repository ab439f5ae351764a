"""The prompt registry: immutable numbered versions of each prompt, labels (``production``, ``staging``...)
that point at one version each, an audit log of every label change, and gated promotion.

Example:
    >>> from promptopt.registry import Registry
    >>> from promptopt.store import get_store
    >>> registry = Registry(get_store())  # doctest: +SKIP
    >>> version, created = registry.register("support-triage", config, created_by="alice")  # doctest: +SKIP
    >>> registry.set_label("support-triage", "production", version.version, who="alice")  # doctest: +SKIP
"""

from promptopt.names import LABEL_PATTERN, NAME_PATTERN  # re-exported: the rules the registry enforces
from promptopt.registry._adapters import AdapterMismatch
from promptopt.registry._promotion import Evaluate, paired_evidence, promote_if_better
from promptopt.registry._registry import LabelConflict, Registry
from promptopt.registry._values import (
    Evidence,
    LabelEvent,
    Lineage,
    PromotionDecision,
    PromptSummary,
    PromptVersion,
)

__all__ = [
    "LABEL_PATTERN",
    "NAME_PATTERN",
    "AdapterMismatch",
    "Evaluate",
    "Evidence",
    "LabelConflict",
    "LabelEvent",
    "Lineage",
    "PromotionDecision",
    "PromptSummary",
    "PromptVersion",
    "Registry",
    "paired_evidence",
    "promote_if_better",
]
