"""The ``ansible-local`` provisioner's options."""

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Bool, Str, StrList
from amibake.errors import Problem
from amibake.provisioners.common import (
    ansible_command_field,
    extra_arguments_field,
    file_problem,
    galaxy_command_field,
    galaxy_file_field,
    galaxy_force_install_field,
)


class AnsibleLocalConfig(PluginConfig):
    """ansible-local: run Ansible on the machine being built."""

    command: Str = ansible_command_field()
    extra_arguments: StrList = extra_arguments_field()
    group_vars: Str = Field(
        "",
        description=(
            "A path to the directory containing ansible group variables on your local system to be "
            "copied to the remote machine. By default, this is empty."
        ),
    )
    host_vars: Str = Field(
        "",
        description=(
            "A path to the directory containing ansible host variables on your local system to be "
            "copied to the remote machine. By default, this is empty."
        ),
    )
    playbook_dir: Str = Field(
        "",
        description=(
            "A path to the complete ansible directory structure on your local system to be copied to "
            "the remote machine as the `staging_directory` before all other files and directories."
        ),
    )
    playbook_file: Str = Field(
        "",
        description=(
            "The playbook file to be executed by ansible. This file must exist on your local system and "
            "will be uploaded to the remote machine. This option is exclusive with `playbook_files`."
        ),
    )
    playbook_files: StrList = Field(
        default_factory=list,
        description=(
            "The playbook files to be executed by ansible. These files must exist on your local system. "
            "If the files don't exist in the `playbook_dir` or you don't set `playbook_dir` they will "
            "be uploaded to the remote machine. This option is exclusive with `playbook_file`."
        ),
    )
    playbook_paths: StrList = Field(
        default_factory=list,
        description=(
            "An array of directories of playbook files on your local system. These will be uploaded to "
            "the remote machine under `staging_directory`/playbooks. By default, this is empty."
        ),
    )
    role_paths: StrList = Field(
        default_factory=list,
        description=(
            "An array of paths to role directories on your local system. These will be uploaded to the "
            "remote machine under `staging_directory`/roles. By default, this is empty."
        ),
    )
    collection_paths: StrList = Field(
        default_factory=list,
        description=("An array of local paths of collections to upload."),
    )
    staging_directory: Str = Field(
        "",
        description=(
            "The directory where files will be uploaded. Packer requires write permissions in this directory."
        ),
    )
    clean_staging_directory: Bool = Field(
        False,
        description=(
            "If set to `true`, the content of the `staging_directory` will be removed after executing "
            "ansible. By default this is set to `false`."
        ),
    )
    inventory_file: Str = Field(
        "",
        description=(
            "The inventory file to be used by ansible. This file must exist on your local system and "
            "will be uploaded to the remote machine. When using an inventory file, it's also required "
            "to `--limit` the hosts to the specified host you're building. The `--limit` argument can "
            "be provided in the `extra_arguments` option. An example inventory file may look like:"
        ),
    )
    inventory_groups: StrList = Field(
        default_factory=list,
        description=(
            "`inventory_groups` (string) - A comma-separated list of groups to which packer will assign "
            "the host `127.0.0.1`. A value of `my_group_1,my_group_2` will generate an Ansible "
            "inventory like:"
        ),
    )
    galaxy_file: Str = galaxy_file_field()
    galaxy_command: Str = galaxy_command_field()
    galaxy_force_install: Bool = galaxy_force_install_field()
    galaxy_roles_path: Str = Field(
        "",
        description=(
            "The path to the directory on the remote system in which to install the roles. Adds "
            "`--roles-path /path/to/your/roles` to `ansible-galaxy` command. By default, this will "
            "install to a 'galaxy_roles' subfolder in the staging/roles directory."
        ),
    )
    galaxy_collections_path: Str = Field(
        "",
        description=(
            "The path to the directory on the remote system in which to install the collections. Adds "
            "`--collections-path /path/to/your/collections` to `ansible-galaxy` command. By default, "
            "this will install to a 'galaxy_collections' subfolder in the staging/collections "
            "directory."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs: list[Problem | None] = []
        if self.playbook_files and self.playbook_file:
            errs.append(
                ctx.problem(
                    "Either playbook_file or playbook_files can be specified, not both", "playbook_files"
                )
            )
        if not self.playbook_files and not self.playbook_file:
            errs.append(
                ctx.problem("Either playbook_file or playbook_files must be specified", "playbook_file")
            )
        if self.playbook_file:
            errs.append(file_problem(ctx, "playbook_file", self.playbook_file))
        for path in self.playbook_files:
            errs.append(file_problem(ctx, "playbook_files", path))
        for key in ("inventory_file", "galaxy_file"):
            if getattr(self, key):
                errs.append(file_problem(ctx, key, getattr(self, key)))
        for key in ("playbook_dir", "group_vars", "host_vars"):
            if getattr(self, key):
                errs.append(file_problem(ctx, key, getattr(self, key), directory=True))
        for key in ("playbook_paths", "role_paths", "collection_paths"):
            for path in getattr(self, key):
                errs.append(file_problem(ctx, key, path, directory=True))
        return [e for e in errs if e is not None]

    def local_inputs(self) -> list[tuple[str, str]]:
        out = [(k, getattr(self, k)) for k in ("playbook_file", "playbook_dir", "group_vars", "host_vars",
                                                "inventory_file", "galaxy_file") if getattr(self, k)]
        for key in ("playbook_files", "playbook_paths", "role_paths", "collection_paths"):
            out += [(f"{key}[{i}]", path) for i, path in enumerate(getattr(self, key))]
        return out
