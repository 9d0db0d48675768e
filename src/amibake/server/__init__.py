"""A resident amibake: ``amibake server start`` keeps a warm process that forks one worker per command.

CPython spends about a second importing botocore, asyncssh, pydantic and amibake's config models
before a build's first API call; a Go binary like Packer starts in milliseconds. The server pays that
once: it imports and warms everything, then waits on a Unix socket. ``amibake`` (the launcher,
:mod:`amibake.server.client`) finds the socket, sends its arguments, working directory, environment
and umask, and passes its own stdin/stdout/stderr as file descriptors; the server forks a worker that
takes all of them over and runs the command exactly as an in-process ``amibake`` would. The launcher
forwards SIGINT/SIGTERM/SIGHUP and exits with the worker's exit code. If the launcher itself dies
(even by SIGKILL), the worker sees its connection close and interrupts its own run, which cleans up
as after SIGTERM: a build never outlives the command that started it.

Without a running server (or with ``AMIBAKE_NO_SERVER=1``) ``amibake`` runs in-process, as before.
The server exits when amibake's sources (or ``--watch`` files) change, after ``--idle-timeout``, or on
``amibake server stop``.
"""
