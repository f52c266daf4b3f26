"""The bad-record policy: fail with one clear message, or skip and count by reason."""

from __future__ import annotations

from collections import Counter

from osft.common.errors import InputDataError
from osft.common.spec.source import BadRecords

SKIP_HINT = "fix the record, or set source.bad_records.on_error to 'skip' to skip bad records (they are counted)"


class BadRecordPolicy:
    """Decides what happens to a record that cannot be used.

    With ``on_error: fail`` the first bad record raises ``InputDataError`` naming where it is and
    what was wrong. With ``on_error: skip`` it is counted under its reason, until more than
    ``max_skipped`` records were skipped, which fails the run all the same.
    """

    def __init__(self, options: BadRecords) -> None:
        self.options = options
        self.skipped: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.skipped.values())

    def bad(self, reason: str, message: str, *, where: str, line: int | None = None, hint: str | None = None) -> None:
        """Record one bad record; raise when the policy says fail."""
        if self.options.on_error == "fail":
            raise InputDataError(message, path=where, line=line, hint=hint or SKIP_HINT)
        self.skipped[reason] += 1
        limit = self.options.max_skipped
        if limit is not None and self.total > limit:
            raise InputDataError(
                f"more than {limit} bad records skipped (last: {message})",
                path=where,
                line=line,
                hint="fix the input, or raise source.bad_records.max_skipped",
            )
