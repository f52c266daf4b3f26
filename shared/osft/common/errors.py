"""User-facing errors.

Every error a user can fix is an ``OsftError``: its message says where the problem is,
what was expected and what to do. CLIs print the message and exit non-zero; the traceback
goes to the debug log only.
"""

from __future__ import annotations


class OsftError(Exception):
    """Base class for errors a user can act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class SpecError(OsftError):
    """The run spec is invalid; carries every problem found, each with its field path."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"invalid run spec {source}: {len(problems)} problem(s)"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class InputDataError(OsftError):
    """A corpus, pairs or query file holds a record that cannot be used."""

    exit_code = 3

    def __init__(self, message: str, *, path: str, line: int | None = None, hint: str | None = None):
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}", hint=hint)


class StorageError(OsftError):
    """A file or object could not be read or written."""

    exit_code = 4


class CredentialsError(OsftError):
    """Credentials are missing or were refused."""

    exit_code = 5


class ServiceError(OsftError):
    """A remote service (OpenSearch, Bedrock, SageMaker, an HTTP endpoint) refused or failed."""

    exit_code = 6


class QuotaError(ServiceError):
    """A service quota or a cost limit would be exceeded."""

    exit_code = 7


class StageOrderError(OsftError):
    """A stage was run before the stage whose outputs it reads."""

    exit_code = 8
