"""The ``amibake`` command: Packer's verbs and single-dash flags.

Commands only parse flags, call the library and map its errors to exit codes. Bad input never
produces a traceback: an :class:`~amibake.errors.AmibakeError` becomes its message on stderr and
its exit code; anything else is a bug, reported as such (with the traceback only under
``AMIBAKE_DEBUG=1``).
"""

from __future__ import annotations

import atexit
import errno
import gc
import importlib
import os
import sys
import types
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from amibake import PACKER_COMPAT_VERSION, __version__
from amibake.errors import AmibakeError

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}


#: every verb but ``version``, in ``--help`` order, with the module that declares it: a verb's module
#: is imported when the verb is used, so ``version`` imports none of them and ``validate`` no server,
#: cleanup or ``fmt`` code (``--help`` imports them all)
VERBS: dict[str, str] = {
    "validate": "amibake.cli.commands",
    "inspect": "amibake.cli.commands",
    "build": "amibake.cli.commands",
    "cleanup": "amibake.cli.cleanup_command",
    "prune": "amibake.cli.prune_command",
    "fmt": "amibake.cli.hcl_commands",
    "hcl2_upgrade": "amibake.cli.hcl_commands",
    "plugins": "amibake.cli.plugins_command",
    "server": "amibake.cli.server_command",
    "plan": "amibake.cli.commands",
}


class _Group(click.Group):
    """Declares its verbs lazily (:data:`VERBS`) and lists them in that order in ``--help``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in dict.fromkeys(VERBS.values()):
            importlib.import_module(module)
        order = ["version", *VERBS]
        return [n for n in order if n in self.commands] + [n for n in self.commands if n not in order]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in VERBS:
            importlib.import_module(VERBS[cmd_name])
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """Library errors become their message on stderr and their exit code, never a traceback."""
        try:
            return super().invoke(ctx)
        except AmibakeError as err:
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "-v", "-version", "--version", message="amibake %(version)s")
def cli() -> None:
    """Build Amazon Machine Images from Packer templates (JSON and HCL2)."""


@cli.command(context_settings=CONTEXT)
def version() -> None:
    """Print amibake's version and the Packer version it is compatible with."""
    click.echo(f"amibake {__version__} (compatible with Packer {PACKER_COMPAT_VERSION})")


def fail(err: AmibakeError) -> None:
    click.echo(f"Error: {err}", err=True)
    sys.exit(err.exit_code)


def main(argv: list[str] | None = None) -> None:
    # amibake's config models use no pydantic plugins; without this, pydantic scans every
    # installed distribution's entry points for plugins when it builds its first validator.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _no_plugin_discovery()
    # Runs after every other exit handler: the interpreter's final collections then skip the
    # objects alive at exit (0.1-0.5 s of CPU with boto3, asyncssh and pydantic loaded).
    atexit.register(gc.freeze)

    try:
        rv = cli.main(args=argv, prog_name="amibake", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)  # ctx.exit(code) comes back as the return value without standalone mode
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except AmibakeError as e:
        fail(e)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except OSError as e:
        if e.filename is None and e.errno in _OUTPUT_FULL and not os.environ.get("AMIBAKE_DEBUG"):
            # stdout is a file at its size limit (`ulimit -f`) or on a full disk
            _say_stderr(f"Error: cannot write the output: {e.strerror}")
            sys.exit(1)
        if e.filename is None or os.environ.get("AMIBAKE_DEBUG"):
            _internal_error()
        # a file amibake was given or keeps (a journal, a socket) that cannot be used: not a bug
        click.echo(f"Error: {e.filename}: {e.strerror or e}", err=True)
        sys.exit(1)
    except MemoryError:
        click.echo("Error: out of memory: the input asks for more memory than this process may use", err=True)
        sys.exit(1)
    except Exception:
        _internal_error()


def _no_plugin_discovery() -> None:
    """With pydantic's plugins off, stand in for its plugin loader module: pydantic's own finds no
    plugins then either, but imports importlib.metadata (zipfile, email, csv...: ~25 ms of CPU, a
    tenth of an in-process ``validate``) when it builds the first validator."""
    name = "pydantic.plugin._loader"
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") != "__all__" or name in sys.modules:
        return
    stub = types.ModuleType(name, "amibake's stand-in while pydantic's plugins are off (amibake.cli.main)")
    # what pydantic's own get_plugins returns with PYDANTIC_DISABLE_PLUGINS=__all__
    stub.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules[name] = stub


_OUTPUT_FULL = frozenset({errno.EFBIG, errno.ENOSPC, errno.EDQUOT})


def _say_stderr(text: str) -> None:
    try:
        click.echo(text, err=True)
    except OSError:
        pass  # stderr is full too: the exit status says it


def _internal_error() -> NoReturn:
    """Anything else is a bug: say so (the traceback only under AMIBAKE_DEBUG=1)."""
    if os.environ.get("AMIBAKE_DEBUG"):
        raise  # re-raises what the caller's except block caught
    import traceback

    tb = traceback.format_exc().strip().splitlines()
    click.echo(f"Internal error (a bug in amibake, please report it): {tb[-1]}", err=True)
    click.echo("Run again with AMIBAKE_DEBUG=1 for the traceback.", err=True)
    sys.exit(70)
