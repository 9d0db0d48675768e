"""The ``manifest`` post-processor: append the build's artifact to a JSON file.

The file is Packer's (``packer-manifest.json`` by default)::

    {"builds": [{"name", "builder_type", "build_time", "files", "artifact_id",
                 "packer_run_uuid", "custom_data"}, ...], "last_run_uuid": "..."}

Each run appends to what the file holds (with ``-force``, a new run starts the file afresh).
Builds running in parallel (threads or processes) append one at a time: the read-modify-write
is done under an exclusive ``flock`` of the file's directory and the new content replaces the
file atomically. The input artifact is always kept.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from amibake.api import Artifact, BuildEnv
from amibake.errors import AmibakeError, BuildError

DEFAULT_OUTPUT = "packer-manifest.json"
BUILDER_ID = "packer.post-processor.manifest"


def go_json(value: Any) -> str:
    """``json.MarshalIndent(value, "", "  ")`` as Go writes it (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def build_entry(
    *,
    name: str,
    builder_type: str,
    build_time: int,
    files: list[dict[str, Any]] | None,
    artifact_id: str,
    packer_run_uuid: str,
    custom_data: Mapping[str, str] | None,
) -> dict[str, Any]:
    """One element of ``builds``, keys in Packer's order (``build_time`` omitted when 0)."""
    entry: dict[str, Any] = {"name": name, "builder_type": builder_type}
    if build_time:
        entry["build_time"] = build_time
    entry["files"] = files
    entry["artifact_id"] = artifact_id
    entry["packer_run_uuid"] = packer_run_uuid
    entry["custom_data"] = None if custom_data is None else dict(sorted(custom_data.items()))
    return entry


def _normalize(raw: Any, path: str) -> dict[str, Any]:
    """An existing ``builds`` element, read as Packer's struct reads it (unknown keys dropped)."""
    if not isinstance(raw, dict):
        raise BuildError(f"Unable to parse content from {path}: a build entry is not an object")
    files = raw.get("files")
    if files is not None:
        if not isinstance(files, list):
            raise BuildError(f"Unable to parse content from {path}: \"files\" is not a list")
        files = [
            {"name": str(f.get("name", "")), "size": int(f.get("size") or 0)}
            for f in files
            if isinstance(f, dict)
        ]
    custom = raw.get("custom_data")
    return build_entry(
        name=str(raw.get("name") or ""),
        builder_type=str(raw.get("builder_type") or ""),
        build_time=int(raw.get("build_time") or 0),
        files=files,
        artifact_id=str(raw.get("artifact_id") or ""),
        packer_run_uuid=str(raw.get("packer_run_uuid") or ""),
        custom_data={str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else None,
    )


def read_manifest(path: str) -> tuple[list[dict[str, Any]], str]:
    """The builds and ``last_run_uuid`` of an existing manifest ([] and "" when there is none)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return [], ""
    except OSError as exc:
        raise BuildError(f"Unable to open {path} for reading: {exc.strerror or exc}") from exc
    if not text:
        return [], ""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BuildError(f"Unable to parse content from {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise BuildError(f"Unable to parse content from {path}: not a JSON object")
    builds = doc.get("builds") or []
    if not isinstance(builds, list):
        raise BuildError(f"Unable to parse content from {path}: \"builds\" is not a list")
    return [_normalize(b, path) for b in builds], str(doc.get("last_run_uuid") or "")


@contextmanager
def locked_directory(directory: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (blocks other threads and processes)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_atomically(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a temp file in the same directory, renamed)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def append_build(path: str, entry: dict[str, Any], run_uuid: str, force: bool = False) -> None:
    """Append ``entry`` to the manifest at ``path`` under the lock (Packer's read-append-write)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        with locked_directory(directory):
            builds, last_run = read_manifest(path)
            if force and last_run != run_uuid:
                builds = []
            builds.append(entry)
            write_atomically(path, go_json({"builds": builds, "last_run_uuid": run_uuid}))
    except OSError as exc:
        raise BuildError(f"Unable to write {path}: {exc.strerror or exc}") from exc


class ManifestPostProcessor:
    """Packer's ``manifest`` post-processor."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        c, env = self.config, self.env
        data = artifact.state("generated_data") or {}
        custom: dict[str, str] | None = None
        if c.custom_data:
            custom = {}
            for key, value in c.custom_data.items():
                try:
                    custom[key] = env.render(str(value), data)
                except AmibakeError as exc:
                    raise BuildError(f"Error interpolating custom data: {exc}") from exc
        found = env.image_fingerprint
        if env.skip_unchanged and found.get("fingerprint"):
            # -skip-unchanged: the fingerprint, its breakdown, and whether the image was reused
            custom = dict(custom or {})
            custom["amibake:fingerprint"] = str(found["fingerprint"])
            custom["amibake:reused"] = "true" if found.get("reused") else "false"
            for component, short in sorted(found.get("breakdown", {}).items()):
                custom[f"amibake:fingerprint:{component}"] = str(short)
        files = []
        for name in artifact.files or []:
            try:
                size = os.stat(name).st_size
            except OSError:
                size = 0
            files.append({"name": os.path.basename(name) if c.strip_path else name, "size": size})
        entry = build_entry(
            name=env.build_name,
            builder_type=env.builder_type,
            build_time=0 if c.strip_time else int(time.time()),
            files=files or None,
            artifact_id=artifact.id,
            packer_run_uuid=env.run_id,
            custom_data=custom,
        )
        output = env.render(c.output or DEFAULT_OUTPUT, data)
        append_build(output, entry, env.run_id, force=env.force)
        return artifact, True, True
