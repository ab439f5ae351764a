"""Custom scorer functions for the tests; imported inside worker processes with this folder as base_dir."""

import ctypes
import os
import time


def matches(output, expected):
    return output.strip().lower() == str(expected).strip().lower()


def half(output):
    return 0.5


def every_argument(**kwargs):
    # Proves the worker passes all six arguments to a **kwargs function.
    return 1.0 if sorted(kwargs) == ["expected", "input", "metadata", "output", "parsed", "trace"] else 0.0


def reads_metadata(metadata, input):
    return metadata["weight"] * input["scale"]


def too_big():
    return 1.5


def not_a_number():
    return "0.9"


def raises():
    raise RuntimeError("boom in the scorer")


def hang():
    time.sleep(60)
    return 1.0


def exits():
    os._exit(1)


def segfault():
    ctypes.string_at(0)


def needs_unknown(output, reference):
    return 1.0


def pid():
    # A number in [0, 1] that still tells worker processes apart.
    return (os.getpid() % 1000) / 1000


def sleepy(input):
    time.sleep(input.get("sleep", 0))
    return 1.0
