"""The ``shell-local`` provisioner's options (the shell-local post-processor extends them)."""

import os
import sys

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.weak import Bool, Str, StrList
from amibake.errors import Problem
from amibake.provisioners.common import (
    ShellCommon,
    env_var_problems,
    execute_command_field,
    inline_shebang_field,
    script_problems,
)

ONLY_ON_OS = ("darwin", "freebsd", "linux", "openbsd", "solaris", "windows")


class ShellLocalConfig(ShellCommon):
    """shell-local (provisioner and post-processor): run commands on the machine running amibake."""

    command: Str = Field(
        "",
        description=(
            "** DEPRECATED: USE INLINE INSTEAD ** ** Only Present for backwards compatibility ** "
            "Command is the command to execute"
        ),
    )
    execute_command: StrList = execute_command_field(default_factory=list)
    inline_shebang: Str = inline_shebang_field()
    only_on: StrList = Field(default_factory=list, description="An array of multiple Runtime OSs to run on.")
    tempfile_extension: Str = Field(
        "",
        description=("The file extension to use for the file generated from the inline commands"),
    )
    use_linux_pathing: Bool = Field(False, description="End dedupe with postprocessor")

    @property
    def all_inline(self) -> list[str]:
        """``inline``, or ``[command]``."""
        return [self.command] if self.command else list(self.inline)

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = []
        if not self.command and not self.inline and not self.scripts and not self.script:
            errs.append(p("Command, Inline, Script and Scripts options cannot all be empty."))
        too_many = (
            "You may only specify one of the following options: Command, Inline, Script or Scripts. "
            "Please consolidate these options in your config."
        )
        if (
            (self.command and (self.inline or self.scripts or self.script))
            or (self.script and (self.scripts or self.inline))
            or (self.scripts and self.inline)
        ):
            errs.append(p(too_many))
        errs += script_problems(ctx, self.all_scripts)
        for i, os_name in enumerate(self.only_on):
            if os_name not in ONLY_ON_OS:
                errs.append(
                    p(
                        f"Invalid OS specified in only_on: '{os_name}'\nSupported OS names: "
                        + ", ".join(ONLY_ON_OS),
                        f"only_on[{i}]",
                    )
                )
                break
        if self.use_linux_pathing:
            # Packer converts each script's absolute path to WSL's /mnt/<drive>/...: a path without a
            # drive (any path on the machines amibake runs on) is an error
            for i, path in enumerate(self.all_scripts):
                absolute = os.path.abspath(path).replace("\\", "/")
                if ":/" not in absolute:
                    errs.append(
                        p(
                            "There was an error splitting your absolute path; expected to find a drive "
                            f"following the format ':/' but did not: absolute path: {absolute}",
                            f"scripts[{i}]" if self.scripts else "script",
                        )
                    )
        if self.use_linux_pathing and self.all_inline:
            errs.append(
                p(
                    "Packer is unable to use the Command and Inline features with the Windows Linux "
                    "Subsystem. Please use the Script or Scripts options instead",
                    "use_linux_pathing",
                )
            )
        errs += env_var_problems(ctx, self.environment_vars)
        return errs

    def runs_here(self) -> bool:
        """False when ``only_on`` excludes this OS."""
        here = {"win32": "windows", "cygwin": "windows"}.get(sys.platform, sys.platform)
        here = "freebsd" if here.startswith("freebsd") else here
        return not self.only_on or here in self.only_on
