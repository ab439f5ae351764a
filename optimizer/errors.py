"""One root exception and typed subclasses whose messages say how to fix the problem.

A user's bad input (spec, dataset, template) raises :class:`InputError`, which names the file, the field and
the expected form; the CLI maps it to exit code 2 and writes nothing to the store.
"""

from __future__ import annotations


class OptimizeError(Exception):
    """Root of every error this package raises on purpose."""


class InputError(OptimizeError):
    """Bad user input: a spec, a dataset, a template or an HTTP body.

    Args:
        file: The file (or "request body") the bad value came from.
        field: Dotted path of the field, e.g. ``task.prompt[0].content``; "" when the whole file is bad.
        message: What is wrong and the expected form.
    """

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file, self.field, self.message = str(file), field, message
        where = f"{self.file}: {field}" if field else self.file
        super().__init__(f"{where}: {message}")


class ModelCallError(OptimizeError):
    """A model call failed. ``retryable`` errors (429, 5xx, timeouts) are retried with backoff."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retryable, self.retry_after, self.status = retryable, retry_after, status

    def __reduce__(self) -> tuple[object, ...]:  # keyword-only fields survive pickling (Ray, processes)
        return (_model_call_error, (str(self), self.retryable, self.retry_after, self.status))


def _model_call_error(message: str, retryable: bool, retry_after: float | None, status: int | None) -> ModelCallError:
    return ModelCallError(message, retryable=retryable, retry_after=retry_after, status=status)


class _EvalStopped(OptimizeError):
    """An eval ended early; ``experiment_id`` is the failed experiment it recorded (``None`` outside an eval)."""

    experiment_id: str | None = None


class BudgetExceeded(_EvalStopped):
    """A call or trial would pass the budget; raised before the call is sent."""


class EvalFailed(_EvalStopped):
    """An eval's error rate passed its threshold; the eval is recorded as failed, never as low scores."""


class ScorerError(OptimizeError):
    """A scorer raised, timed out or returned a value outside [0, 1]; recorded on the row."""


class NotFound(OptimizeError):
    """An experiment, run, prompt, version or label does not exist."""
