"""Statistics for verdicts: paired bootstrap intervals and paired significance tests."""

from promptopt.stats._paired import format_p, paired_bootstrap_ci, paired_permutation_p

__all__ = ["format_p", "paired_bootstrap_ci", "paired_permutation_p"]
