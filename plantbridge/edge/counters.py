"""Turn absolute machine counters into deltas: resets and wrap-arounds, never a negative delta."""

from __future__ import annotations


def counter_delta(last: int | None, new: int, counter_max: int, wrap_window: int) -> int:
    """Parts counted between two readings of an absolute counter.

    - first reading (``last`` None): 0 — the counter is only the baseline;
    - rising: ``new - last``;
    - falling from near ``counter_max`` to a small value, where ``counter_max - last + new + 1`` is
      within ``wrap_window``: a wrap-around, that many parts;
    - any other fall: a reset, the new value counts from zero (``new``).
    """
    if last is None:
        return 0
    if new >= last:
        return new - last
    wrapped = counter_max - last + new + 1
    if 0 < wrapped <= wrap_window:
        return wrapped
    return new


def as_count(value: object) -> int | None:
    """A counter value as int (None for a missing/bad value: such a reading is skipped)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None
