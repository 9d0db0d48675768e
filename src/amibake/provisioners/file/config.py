"""The ``file`` provisioner's options."""

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Bool, Str, StrList
from amibake.errors import Problem


class FileConfig(PluginConfig):
    """file: upload files or directories to the machine, or download from it."""

    content: Str = Field(
        "",
        description=(
            "This is the content to copy to `destination`. If destination is a file, content will be "
            "written to that file, in case of a directory a file named `pkr-file-content` is created. "
            "It's recommended to use a file as the destination. The `templatefile` function might be "
            "used here, or any interpolation syntax. This attribute cannot be specified with source or "
            "sources."
        ),
    )
    source: Str = Field(
        "",
        description=(
            "The path to a local file or directory to upload to the machine. The path can be absolute "
            "or relative. If it is relative, it is relative to the working directory when Packer is "
            "executed. If this is a directory, the existence of a trailing slash is important. Read "
            "below on uploading directories. Mandatory unless `sources` is set."
        ),
    )
    sources: StrList = Field(
        default_factory=list,
        description=(
            "A list of sources to upload. This can be used in place of the `source` option if you have "
            "several files that you want to upload to the same place. Note that the destination must be "
            "a directory with a trailing slash, and that all files listed in `sources` will be uploaded "
            "to the same directory with their file names preserved."
        ),
    )
    destination: Str = Field(
        "",
        description=(
            "The path where the file will be uploaded to in the machine. This value must be a writable "
            "location and any parent directories must already exist. If the provisioning user "
            '(generally not root) cannot write to this directory, you will receive a "Permission '
            "Denied\" error. If the source is a file, it's a good idea to make the destination a file "
            "as well, but if you set your destination as a directory, at least make sure that the "
            "destination ends in a trailing slash so that Packer knows to use the source's basename in "
            "the final upload path. Failure to do so may cause Packer to fail on file uploads. If the "
            "destination file already exists, it will be overwritten."
        ),
    )
    direction: Str = Field(
        "upload",
        description=(
            'The direction of the file transfer. This defaults to "upload". If it is set to '
            '"download" then the file "source" in the machine will be downloaded locally to '
            '"destination"'
        ),
    )
    generated: Bool = Field(
        False,
        description=(
            "For advanced users only. If true, check the file existence only before uploading, rather "
            "than upon pre-build validation. This allows users to upload files created on-the-fly. This "
            "defaults to false. We don't recommend using this feature, since it can cause Packer to "
            "become dependent on system state. We would prefer you generate your files before the "
            "Packer run, but realize that there are situations where this may be unavoidable."
        ),
    )

    @property
    def all_sources(self) -> list[str]:
        """``sources`` then ``source``, as Packer appends them."""
        return [*self.sources, self.source] if self.source else list(self.sources)

    def local_inputs(self) -> list[tuple[str, str]]:
        """What an upload sends (a download reads from the machine: no local input)."""
        if self.direction != "upload":
            return []
        out = [(f"sources[{i}]", s) for i, s in enumerate(self.sources)]
        return out + ([("source", self.source)] if self.source else [])

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = []
        if self.direction not in ("download", "upload"):
            errs.append(p("Direction must be one of: download, upload.", "direction"))
        if self.direction == "upload" and not self.generated:
            for src in self.all_sources:
                missing = ctx.stat_error(src)
                if missing:
                    errs.append(
                        p(f"Bad source '{src}': {missing}", "source" if src == self.source else "sources")
                    )
        if self.all_sources and self.content:
            errs.append(p("source(s) conflicts with content.", "content"))
        if not self.destination:
            errs.append(p("Destination must be specified.", "destination"))
        return errs
