"""The cluster-wide per-model limit, split between the workers of a batch: no round trip per call.

Each worker that runs trials in a batch gets a share of ``concurrency``, in proportion to its trials (at
least one slot each), and enforces it with a :class:`promptopt.engine.LocalLimiter` for every model. The
shares add up to ``concurrency``, so calls in flight per model over the cluster never pass it.
"""

from __future__ import annotations


def split_slots(concurrency: int, trials: list[int]) -> list[int]:
    """Slots per worker for ``trials[i]`` trials on worker ``i`` (each at least one trial): one each, the
    rest by largest remainder in proportion to the trials.

    Example:
        >>> split_slots(64, [3, 1])
        [48, 16]
    """
    if not 0 < len(trials) <= concurrency:
        raise ValueError(f"{len(trials)} workers cannot share {concurrency} slots (one each at least)")
    rest, total = concurrency - len(trials), sum(trials)
    exact = [rest * n / total for n in trials]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(trials)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[: rest - sum(shares)]:
        shares[i] += 1
    return [1 + s for s in shares]
