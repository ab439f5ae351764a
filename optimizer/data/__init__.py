"""Datasets: cases, splits, loading and hashing."""

from promptopt.data._case import Case, Dataset, Split, canonical_json, content_hash, make_cases
from promptopt.data._load import load_dataset, read_records

__all__ = ["Case", "Dataset", "Split", "canonical_json", "content_hash", "load_dataset", "make_cases", "read_records"]
