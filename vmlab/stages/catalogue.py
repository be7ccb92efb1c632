"""The stage catalogue: built-in stages by name, and script stages from profiles."""
from __future__ import annotations

import importlib

from vmlab.errors import ProfileError
from vmlab.profile import LoadedProfile, ScriptStage
from vmlab.stages.base import Context, Stage, StageEnv
from vmlab.stages.secretio import secret_variable

#: Modules whose STAGES lists are the built-in stages.
STAGE_MODULES = (
    "vmlab.stages.demo",
    "vmlab.stages.environment",
    "vmlab.stages.infrastructure",
    "vmlab.stages.keystone",
    "vmlab.stages.glance",
)


def builtin_stages() -> dict[str, Stage]:
    catalogue: dict[str, Stage] = {}
    for module_name in STAGE_MODULES:
        for stage in importlib.import_module(module_name).STAGES:
            catalogue[stage.name] = stage
    return catalogue


def secret_variables(env: StageEnv) -> dict[str, str] | None:
    """The lab's secrets for a profile's commands, as ``$VMLAB_SECRET_<NAME>``: the values
    reach the guest's shell without ever being part of a command line or a log."""
    return {secret_variable(name): value for name, value in env.secrets.items()} or None


def script_stage(entry: ScriptStage) -> Stage:
    def install(c: Context, env: StageEnv) -> None:
        for command in entry.run:
            c.run(command, env=secret_variables(env))

    def verify(c: Context, env: StageEnv) -> None:
        for command in entry.verify:
            c.run(command, env=secret_variables(env))

    return Stage(entry.name, install, verify, entry.reboot, entry.description)


def resolve_stages(loaded: LoadedProfile) -> list[Stage]:
    """The profile's stages in order; an unknown name, or a script stage named like a
    built-in one (it would stand in for it unnoticed), is a profile error."""
    catalogue = builtin_stages()
    stages: list[Stage] = []
    problems: list[str] = []
    for index, entry in enumerate(loaded.profile.stages):
        if isinstance(entry, ScriptStage):
            if entry.name in catalogue:
                problems.append(
                    f"{loaded.file_defining('stages', index, 'name')}: stages[{index}].name: "
                    f"{entry.name!r} is a built-in stage; give the script stage another name")
            stages.append(script_stage(entry))
        elif entry in catalogue:
            stages.append(catalogue[entry])
        else:
            problems.append(f"{loaded.file_defining('stages', index)}: stages[{index}]: "
                            f"unknown stage {entry!r}")
    if problems:
        raise ProfileError(f"profile {loaded.path} names stages wrongly "
                           f"({len(problems)} problem{'s' if len(problems) != 1 else ''})",
                           problems=problems,
                           hint="built-in stages: " + ", ".join(sorted(catalogue)))
    return stages


__all__ = ["Context", "Stage", "StageEnv", "builtin_stages", "resolve_stages"]
