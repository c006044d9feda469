"""The exit codes of the `nightscore` command, in one place: a script or a scheduler can
tell a rejected batch from a server that is down without reading the message.

`for_error` reads an exception the way `nightscore.errors.classify` does (data problem or
unavailable component), with the batch outcomes an operator acts on told apart.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # unexpected: a bug, or an error nightscore does not know (traceback printed)
    USAGE = 2  # bad arguments or a bad NIGHTSCORE_* setting (argparse exits 2 as well)
    DATA = 3  # a data problem that running again will not fix: no champion, a model
    # that does not fit the features, nothing scored to monitor, too few labelled days
    MISSING = 4  # the batch has not landed where it should be
    REJECTED = 5  # the batch failed a critical expectation: recorded, alerted, not loaded
    HELD = 6  # the batch would replace a loaded day with far fewer rows: held, not loaded
    UNAVAILABLE = 7  # a component did not answer (warehouse, MLflow, SMTP, store): retry
    DEGRADED = 8  # the command answered, but a part it reads from a component that is
    # down is missing (`status` without MLflow) or not done (alerts left pending)


DESCRIPTIONS = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "unexpected error (a bug?): the traceback says where",
    ExitCode.USAGE: "bad arguments or a bad NIGHTSCORE_* setting",
    ExitCode.DATA: "a data problem running again will not fix (no champion, ...)",
    ExitCode.MISSING: "the batch has not landed",
    ExitCode.REJECTED: "the batch was rejected (failed a critical expectation)",
    ExitCode.HELD: "the batch was held (far fewer rows than the loaded day)",
    ExitCode.UNAVAILABLE: "a component is unavailable (warehouse, MLflow, SMTP, store)",
    ExitCode.DEGRADED: "partly done: status without MLflow, or alerts left pending",
}


def epilog() -> str:
    """The table of exit codes that `nightscore --help` ends with."""
    return "exit codes:\n" + "\n".join(
        f"  {code.value}  {code.name.lower():<12} {DESCRIPTIONS[code]}" for code in ExitCode
    )


def for_error(exc: BaseException) -> ExitCode:
    """The exit code of a command that stopped on `exc`."""
    from nightscore.config import SettingsError
    from nightscore.errors import DataError, InfrastructureError, classify
    from nightscore.ingest import BatchHeld, BatchMissing, BatchRejected

    found = classify(exc)
    if isinstance(found, InfrastructureError):
        return ExitCode.UNAVAILABLE
    if isinstance(found, BatchRejected):
        return ExitCode.REJECTED
    if isinstance(found, BatchHeld):
        return ExitCode.HELD
    if isinstance(found, BatchMissing):
        return ExitCode.MISSING
    if isinstance(found, SettingsError):
        return ExitCode.USAGE
    if isinstance(found, DataError):
        return ExitCode.DATA
    return ExitCode.FAILED
