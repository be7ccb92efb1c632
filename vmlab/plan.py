"""`vmlab plan`: every command a stage will run and every file it will write, without a VM.

Stages run against a recording context: commands "succeed" with empty output, files are
captured with their content. Secrets are replaced by placeholders before the stages see
them, so a plan never holds a real secret and is the same on every machine; a command
shows the variable its secret comes in (`env NAME=<secret:...>`), never the value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from vmlab.profile import LoadedProfile
from vmlab.stages import StageEnv, resolve_stages
from vmlab.stages.secretio import MaskedSecret


@dataclass
class PlannedResult:
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class RecordingContext:
    steps: list[dict] = field(default_factory=list)

    def run(self, command: str, *, check: bool = True, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float | None = None,
            hide: bool = False) -> PlannedResult:
        step: dict = {"run": command}
        if env:
            step["env"] = dict(env)
        if input is not None:
            step["input"] = input
        self.steps.append(step)
        return PlannedResult()

    def put(self, content: str | bytes, path: str, mode: int = 0o644) -> None:
        text = content if isinstance(content, str) else content.decode("utf-8", "replace")
        self.steps.append({"write": path, "mode": f"{mode:04o}", "content": text})

    def upload(self, local_path: str, path: str, mode: int = 0o644) -> None:
        self.steps.append({"upload": local_path, "to": path, "mode": f"{mode:04o}"})

    def exists(self, path: str) -> bool:
        self.steps.append({"run": f"test -e {path}"})
        return False


def masked_secrets(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {name: MaskedSecret(f"<secret:{name}>") for name in names}


def plan(lab: str, loaded: LoadedProfile,
         secrets: Mapping[str, str] | None = None) -> list[dict]:
    """[{stage, description, reboot, install: [...], verify: [...]}] in stage order.

    ``secrets``: values to plan with instead of the placeholders (tests use it to see
    where a real value would go)."""
    if secrets is None:
        secrets = masked_secrets(loaded.profile.secrets)
    stages = []
    for stage in resolve_stages(loaded):
        env = StageEnv(lab=lab, profile=loaded.profile, secrets=secrets,
                       host_files={name: f"<host file: {name}>" for name in stage.host_files})
        install, verify = RecordingContext(), RecordingContext()
        stage.install(install, env)
        stage.verify(verify, env)
        stages.append({"stage": stage.name, "description": stage.description,
                       "reboot": stage.reboot, "install": install.steps,
                       "verify": verify.steps})
    return stages


def format_stage(stage: dict) -> list[str]:
    """The lines of one stage's steps, as `vmlab plan` prints them (no heading)."""
    lines: list[str] = []
    for phase in ("install", "verify"):
        for step in stage[phase]:
            if "run" in step:
                lines.append(f"[{phase}] $ {step['run']}")
                lines.extend(f"    env {name}={value}"
                             for name, value in step.get("env", {}).items())
                if "input" in step:
                    lines.extend("    < " + line for line in step["input"].splitlines())
            elif "upload" in step:
                lines.append(f"[{phase}] upload {step['upload']} to {step['to']} "
                             f"(mode {step['mode']})")
            else:
                lines.append(f"[{phase}] write {step['write']} (mode {step['mode']}):")
                lines.extend("    | " + line for line in step["content"].splitlines())
        if phase == "install" and stage["reboot"]:
            lines.append("[install] reboot, then wait for SSH")
    return lines


def format_plan(lab: str, loaded: LoadedProfile, stages: list[dict]) -> str:
    lines = [f"# plan for lab {lab!r} from profile {loaded.profile.name}", ""]
    for number, stage in enumerate(stages, 1):
        lines.append(f"## {number}. {stage['stage']}: {stage['description']}".rstrip(": "))
        lines.append(f"snapshot {stage['stage']!r} is taken before this stage")
        lines.extend(format_stage(stage))
        lines.append("")
    lines.append(f"snapshot {'complete'!r} is taken after the last stage")
    return "\n".join(lines) + "\n"
