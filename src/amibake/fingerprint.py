"""The content fingerprint of a build: a SHA-256 over everything that decides what is on its image.

In it, one component each (so that ``amibake plan`` can say which one changed):

* ``amibake major version``;
* ``builder <type>``: the builder's image-shaping options after interpolation (each builder config
  says which of its options are not: :attr:`PluginConfig.not_image_shaping`);
* ``source AMI``: the id the source AMI (or its filter) resolves to, added by the builder
  (:meth:`Fingerprint.resolved`);
* ``provisioner N (<type>)``: every provisioner's options after interpolation (``override``
  applied), the environment values they pass included;
* ``file <path>`` / ``directory <path>``: the contents of every local file and directory a
  provisioner or the builder uploads, runs or puts on the image (each config names them:
  :meth:`PluginConfig.local_inputs`), never their modification times.

Left out: what only names or distributes the image (``ami_name``, description, tags, regions,
sharing, deprecation), how amibake reaches the machine, credentials, post-processors and the
``error-cleanup-provisioner``. The template is rendered a second time for the fingerprint with the
clock at the Unix epoch and ``uuid``/``uuidv4()``/``bcrypt()`` fixed (:mod:`amibake.template.fixed`),
so ``{{timestamp}}`` in a provisioner does not change it from run to run.

A sensitive value (a sensitive variable, a secret read by a data source, an option named like a
password or key) is included only as an HMAC-SHA256 keyed with a random key kept in the state dir
(``fingerprint.key``, mode 0600): the fingerprint changes when the value does, and nothing stored
or printed can be checked against a guess without that key. Builds that share AMIs across
machines with sensitive inputs must share that key file.

Paths under the template directory, the working directory or the home directory are written
relative to them (the deepest first), so a checkout in another directory or on another machine has
the same fingerprint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets as _secrets
import stat
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake import __version__
from amibake.ui.redact import SECRET_OPTION

if TYPE_CHECKING:
    from amibake.core import PluginInstance, PreparedBuild, RunContext

#: the AMI tag holding the fingerprint
TAG = "amibake:fingerprint"
#: the name of the component the builder adds: the id its source image resolved to
SOURCE_IMAGE = "source AMI"
VERSION = "amibake major version"
KEY_FILE = "fingerprint.key"
#: where breakdowns of tagged fingerprints are kept, for ``amibake plan``'s reasons
BREAKDOWN_DIR = "fingerprints"
SHORT = 12

#: option names whose values are always sensitive (the rule the config decoder uses for messages)
_SECRET_KEY = SECRET_OPTION


def major_version() -> str:
    return __version__.split(".", 1)[0]


@dataclass(frozen=True)
class Fingerprint:
    """A build's fingerprint, by component: name -> SHA-256 of the component's canonical content."""

    components: Mapping[str, str]
    #: components whose value is shown as is by ``plan`` (e.g. the source AMI id); never secrets
    values: Mapping[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The fingerprint: SHA-256 over the sorted components (what the AMI is tagged with)."""
        return _sha256(_canonical_json(dict(self.components)).encode())

    def resolved(self, values: Mapping[str, str]) -> Fingerprint:
        """With components the builder resolves at run time, e.g. ``{"source AMI": "ami-0abc"}``."""
        comps = dict(self.components)
        comps.update({k: _sha256(f"value\0{v}".encode()) for k, v in values.items()})
        return Fingerprint(comps, {**self.values, **values})

    def breakdown(self) -> dict[str, str]:
        """A readable breakdown: component -> a short hash of it (the resolved values as they are)."""
        out = {name: h[:SHORT] for name, h in sorted(self.components.items())}
        out.update(self.values)
        return out


def changes(old: Mapping[str, str] | None, new: Fingerprint) -> list[str]:
    """Why ``new`` differs from an earlier breakdown, one reason per component."""
    if old is None:
        return ["no breakdown of the newest image's fingerprint is known here (built on another "
                "machine or before amibake kept breakdowns)"]
    cur = new.breakdown()
    out = []
    for name in sorted(set(old) | set(cur)):
        before, after = old.get(name), cur.get(name)
        if before == after:
            continue
        if name == SOURCE_IMAGE:
            out.append(f"source AMI resolved to another id ({before} -> {after})" if before
                       else f"source AMI resolved to {after}")
        elif before is None:
            out.append(f"{name} added")
        elif after is None:
            out.append(f"{name} removed")
        elif name.startswith(("file ", "directory ")):
            out.append(f"{name.split(' ', 1)[1]} changed")
        else:
            out.append(f"{name} changed")
    return out


class Canonicalizer:
    """Turns option values into canonical JSON text: sorted keys, paths made relative, sensitive
    values replaced by their keyed hash."""

    def __init__(self, sensitive: Iterable[str], template_dir: Path, cwd: Path | None = None,
                 key_dir: Path | None = None) -> None:
        self.sensitive = sorted({s for s in sensitive if s}, key=len, reverse=True)
        self.prefixes = [(str(p), tag) for p, tag in (
            (template_dir.resolve(), "{{template_dir}}"), ((cwd or Path.cwd()).resolve(), "."),
            (Path.home().resolve(), "~"))]
        self.prefixes.sort(key=lambda pt: len(pt[0]), reverse=True)
        self.key_dir = key_dir
        self._key: bytes | None = None

    def keyed(self, value: str) -> str:
        if self._key is None:
            self._key = load_key(self.key_dir)
        return "sensitive:" + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def path(self, text: str) -> str:
        """A path as the fingerprint shows it: relative to the template or working directory (or
        the home directory), the deepest first."""
        for prefix, tag in self.prefixes:
            if prefix == os.sep:
                continue
            if text == prefix:
                return tag
            if text.startswith(prefix + os.sep):
                return tag + "/" + text[len(prefix) + 1:]
        return text

    def value(self, value: Any, secret: bool = False) -> Any:
        if isinstance(value, str):
            if secret or any(s in value for s in self.sensitive):
                return self.keyed(value)
            return self._paths_in(value)
        if isinstance(value, Mapping):
            return {str(self.value(k)): self.value(v, secret or bool(_SECRET_KEY.search(str(k))))
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, secret) for v in value]
        return value

    def _paths_in(self, text: str) -> str:
        for prefix, tag in self.prefixes:
            if prefix in text and prefix != os.sep:
                text = text.replace(prefix + os.sep, tag + "/").replace(prefix, tag)
        return text


def options_component(raw: Mapping[str, Any], excluded: Iterable[str], canon: Canonicalizer) -> str:
    """The hash of a plugin's options: those in ``excluded`` (and ``type``/``name``) left out."""
    drop = {k.lower() for k in excluded} | {"type", "name"}
    kept = {k: v for k, v in raw.items() if str(k).lower() not in drop and not str(k).startswith("packer_")}
    return _sha256(_canonical_json(canon.value(kept)).encode())


def content_hash(path: Path) -> tuple[str, str]:
    """(``file``/``directory``/``missing``, SHA-256 of the contents): names relative to the root,
    each file's bytes and executable bit, symlink targets; never times or owners."""
    h = hashlib.sha256()
    try:
        st = os.stat(path)
    except OSError:
        return "missing", _sha256(b"missing")
    if not stat.S_ISDIR(st.st_mode):
        h.update(b"file\0" + (b"x" if st.st_mode & 0o111 else b"-") + b"\0")
        _file_into(h, path)
        return "file", h.hexdigest()
    h.update(b"directory\0")
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        rel_root = Path(root).relative_to(path)
        for d in dirs:
            h.update(b"d\0" + str(rel_root / d).encode() + b"\0")
        for name in sorted(files):
            full = Path(root) / name
            rel = str(rel_root / name).encode()
            if full.is_symlink():
                h.update(b"l\0" + rel + b"\0" + os.readlink(full).encode() + b"\0")
                continue
            mode = full.stat().st_mode
            h.update(b"f\0" + rel + b"\0" + (b"x" if mode & 0o111 else b"-") + b"\0")
            _file_into(h, full)
    return "directory", h.hexdigest()


def _file_into(h: Any, path: Path) -> None:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(str(size).encode() + b"\0")
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def _local_components(inst_config: Any, canon: Canonicalizer, out: dict[str, str]) -> None:
    for _key, written in inst_config.local_inputs():
        full = Path(os.path.expanduser(written))
        kind, digest = content_hash(full)
        shown = canon.path(str(full.resolve())) if full.is_absolute() else written
        out[f"{'directory' if kind == 'directory' else 'file'} {shown}"] = digest


def compute(build: PreparedBuild, *, sensitive: Sequence[str], template_dir: Path,
            cwd: Path | None = None, key_dir: Path | None = None) -> Fingerprint:
    """The fingerprint of a prepared build (without the components its builder resolves later)."""
    from amibake.config.base import not_image_shaping

    canon = Canonicalizer(sensitive, template_dir, cwd, key_dir)
    comps: dict[str, str] = {VERSION: _sha256(f"value\0{major_version()}".encode())}
    excluded = not_image_shaping(type(build.builder.config))
    comps[f"builder {build.type}"] = options_component(build.builder.raw, excluded, canon)
    _local_components(build.builder.config, canon, comps)
    for i, inst in enumerate(build.provisioners, 1):
        comps[f"provisioner {i} ({inst.type})"] = _plugin_component(inst, canon)
        _local_components(inst.config, canon, comps)
    return Fingerprint(comps)


def _plugin_component(inst: PluginInstance, canon: Canonicalizer) -> str:
    from amibake.config.base import not_image_shaping

    return options_component(inst.raw, not_image_shaping(type(inst.config)), canon)


#: what makes a JSON variable's value change from run to run
_VOLATILE = re.compile(r"timestamp|isotime|strftime|uuid")


def for_template(
    template: Path, var_files: Sequence[Path], cli_vars: Mapping[str, str],
    only: Sequence[str] = (), except_: Sequence[str] = (), *, main: RunContext | None = None,
    main_builds: Sequence[PreparedBuild] | None = None, cwd: Path | None = None, key_dir: Path | None = None,
) -> dict[str, Fingerprint]:
    """The fingerprint of every selected build of a template, by build name. The template is rendered
    again with time functions fixed (see the module docstring). ``main``: the run's own load, whose
    data source outputs are used again (no second call) and whose JSON variable values are kept
    unless they come from time functions; ``main_builds``: its builds, whose names key the result
    (a build name may itself hold a time function)."""
    from amibake.core import load_template, prepare_builds
    from amibake.template import fixed

    with fixed.placeholders():
        if main is not None and main.template.format == "json":
            run = _json_run(template, var_files, cli_vars, main)
        else:
            replay = main.datasource_outputs if main is not None else None
            run = load_template(template, var_files, cli_vars, started=fixed.FIXED_TIME,
                                datasource_replay=replay)
        builds, _ = prepare_builds(run, only, except_)
    sensitive = run.secrets() + (main.secrets() if main is not None else [])
    names = [b.name for b in (main_builds if main_builds is not None and len(main_builds) == len(builds)
                              else builds)]
    return {name: compute(b, sensitive=sensitive, template_dir=run.template.template_dir, cwd=cwd,
                          key_dir=key_dir) for name, b in zip(names, builds, strict=True)}


def _json_run(template: Path, var_files: Sequence[Path], cli_vars: Mapping[str, str],
              main: RunContext) -> RunContext:
    """A JSON template's run at the fixed clock. Its variables are the main run's, resolved again
    only when one of them holds a time or random function (an ``aws_secretsmanager`` variable is
    then read again)."""
    from amibake.core import RunContext, render_build_names
    from amibake.template import fixed
    from amibake.template.load import load
    from amibake.template.variables import read_json_var_file, resolve_json_variables

    tpl = load(template)
    raw = [v.default for v in tpl.variables.values() if isinstance(v.default, str)] + list(cli_vars.values())
    for f in var_files:
        raw += [str(v) for v in read_json_var_file(f).values()]
    values = dict(main.user_vars)
    secrets = list(main.datasource_secrets)
    if any(_VOLATILE.search(r) for r in raw):
        values = resolve_json_variables(tpl, var_files, cli_vars, init_time=fixed.FIXED_TIME, secrets=secrets)
    run = RunContext(template=tpl, user_vars=values, init_time=fixed.FIXED_TIME, datasource_secrets=secrets)
    render_build_names(run)
    return run


# -- the key and the kept breakdowns -------------------------------------------------------------


def _state_dir(directory: Path | None) -> Path:
    from amibake.journal import state_dir

    return directory if directory is not None else state_dir()


def load_key(directory: Path | None = None) -> bytes:
    """The HMAC key of sensitive values: ``fingerprint.key`` in the state dir, made (0600) on first
    use. Written to a temporary file and linked into place, so two runs never see half a key."""
    d = _state_dir(directory)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    tmp = d / f".{KEY_FILE}.{os.getpid()}.{_secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another run made it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    from amibake.errors import AmibakeError

    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise AmibakeError(f"{path} is not a fingerprint key (64 hexadecimal digits): copy a good one "
                           "there, or remove it to make a new one (AMIs fingerprinted with sensitive "
                           "values under the old key will not be reused)")
    return key


def remember(fp: Fingerprint, build_name: str, directory: Path | None = None) -> None:
    """Keep ``fp``'s breakdown (short hashes only) for ``plan``. Best effort: a failure is ignored."""
    d = _state_dir(directory) / BREAKDOWN_DIR
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = d / f".{fp.digest}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps({"fingerprint": fp.digest, "build": build_name,
                                   "breakdown": fp.breakdown()}, indent=2, sort_keys=True))
        os.replace(tmp, d / f"{fp.digest}.json")
    except OSError:
        pass


def recall(digest: str, directory: Path | None = None) -> dict[str, str] | None:
    """The breakdown kept for ``digest``, or None."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest or ""):
        return None
    try:
        data = json.loads((_state_dir(directory) / BREAKDOWN_DIR / f"{digest}.json").read_text())
    except (OSError, ValueError):
        return None
    bd = data.get("breakdown") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in bd.items()} if isinstance(bd, dict) else None


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
