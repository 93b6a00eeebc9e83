"""The error a run raises for a reason the user can fix."""


class RunError(RuntimeError):
    """A run that cannot start or continue for a reason the user can fix (exit 2 from the CLI)."""
