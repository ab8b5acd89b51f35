"""Errors that carry every problem found, so a user can fix an input in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One problem in an input: where it is and why it is a problem.

    ``row`` is the 1-based data row in the user's file (header excluded) or ``None`` for file-level problems.
    ``severity`` is ``"error"`` (the row cannot be used) or ``"warning"`` (used, but suspicious).
    """

    reason: str
    row: int | None = None
    column: str | None = None
    value: object = None
    severity: str = "error"
    code: str = ""

    def __str__(self) -> str:
        where = f"row {self.row}: " if self.row is not None else ""
        col = f" [{self.column}]" if self.column else ""
        return f"{where}{self.reason}{col}"


class InputError(ValueError):
    """Raised when an input cannot be used. ``problems`` lists every reason found, not just the first."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems: list[Problem] = list(problems or [])
        detail = "; ".join(str(p) for p in self.problems[:5])
        more = f" (+{len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{message}: {detail}{more}" if detail else message)
        self.message = message


class PlanningError(ValueError):
    """Raised by planning models when a request cannot be met; the message says which constraint binds."""


@dataclass
class Report:
    """A validation report: the rows kept, and every problem found with its row and reason."""

    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def add(self, reason: str, **kw) -> None:
        self.problems.append(Problem(reason, **kw))

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {"row": p.row, "column": p.column, "value": None if p.value is None else str(p.value),
                 "severity": p.severity, "code": p.code, "reason": p.reason}
                for p in self.problems
            ],
            columns=["row", "column", "value", "severity", "code", "reason"],
        )
