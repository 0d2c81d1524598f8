"""One error taxonomy for all of ovsphere.

Every adapter (vSphere, OVN, transport nodes, the lab) translates the faults of
its library at its boundary into one of these, so that callers above (the CLI,
the manager, the API) decide what to do from two facts only: what failed, and
whether trying again later can help.  ``temporary`` errors (a lost connection, a
busy object, a conflicting concurrent change) are retried by the manager after a
delay; ``permanent`` ones (bad input, a missing object, a refused setting) are
reported and wait for an operator.

Every message names the problem *and* the fix: the text is shown as is by the CLI.
"""

from __future__ import annotations


class OvsphereError(Exception):
    """Base of every error ovsphere raises on purpose."""

    temporary: bool = False
    #: process exit code the CLI uses for this kind of error
    exit_code: int = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message} ({fix})")


class ConfigError(OvsphereError):
    """A setting, flag or file is malformed or missing."""

    exit_code = 2


class SetupError(OvsphereError):
    """Something this machine needs is missing (a Debian package, a build)."""

    exit_code = 3


class VCenterError(OvsphereError):
    """vCenter refused or failed an operation (permanent unless marked)."""


class VCenterTemporaryError(VCenterError):
    """vCenter could not be reached or reported a transient condition."""

    temporary = True


class VCenterAuthError(VCenterError):
    """vCenter rejected the credentials."""


class NotFoundError(OvsphereError):
    """An object the operator named does not exist."""


class ConflictError(OvsphereError):
    """Someone else changed the object first; re-read and try again."""

    temporary = True


class PreconditionError(OvsphereError):
    """The environment is not in a state in which the operation is safe."""
