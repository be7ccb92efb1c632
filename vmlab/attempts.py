"""What one run of a stage did: the outcome provisioning returns for each attempt, which a
nightly rebuild's report is made of (a state file keeps only a stage's last attempt)."""
from __future__ import annotations

from dataclasses import dataclass

from vmlab.errors import StageFailed
from vmlab.statemodel import StageRecord


@dataclass(frozen=True)
class StageAttempt:
    stage: str
    #: The stage's attempt number over the lab's life (the state's count after this one).
    number: int
    passed: bool
    duration: float
    log: str | None
    #: Why it failed: the message, its log, the failed command with its exit code and the
    #: tails of its output (secrets already redacted by the session); None when it passed.
    failure: dict | None = None


def passed(record: StageRecord) -> StageAttempt:
    return StageAttempt(stage=record.name, number=record.attempts, passed=True,
                        duration=record.duration or 0.0, log=record.log)


def failed(record: StageRecord, exc: StageFailed) -> StageAttempt:
    cause = exc.cause
    return StageAttempt(
        stage=record.name, number=record.attempts, passed=False,
        duration=record.duration or 0.0, log=record.log,
        failure={"message": exc.message, "log": exc.log_path,
                 "command": cause.command if cause else None,
                 "exit_code": cause.returncode if cause else None,
                 "stdout_tail": cause.stdout_tail if cause else "",
                 "stderr_tail": cause.stderr_tail if cause else ""})
