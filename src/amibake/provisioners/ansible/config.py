"""The ``ansible`` provisioner's options."""

import json
from typing import ClassVar

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Bool, Int, Str, StrList, Trilean
from amibake.errors import Problem
from amibake.provisioners.common import (
    ansible_command_field,
    extra_arguments_field,
    file_problem,
    galaxy_command_field,
    galaxy_file_field,
    galaxy_force_install_field,
)


class AnsibleConfig(PluginConfig):
    """ansible: run an Ansible playbook from this machine against the machine being built."""

    unsupported: ClassVar[dict[str, str]] = {
        "ssh_host_key_file": "the proxy adapter always uses a host key generated for the run",
        "ssh_authorized_key_file": "the proxy adapter always accepts a key pair generated for the run",
        "ansible_winrm_use_http": "the WinRM communicator is not implemented yet",
    }

    command: Str = ansible_command_field()
    extra_arguments: StrList = extra_arguments_field()
    ansible_env_vars: StrList = Field(
        default_factory=list,
        description=("Environment variables to set before running Ansible. Usage example:"),
    )
    playbook_file: Str = Field("", description="The playbook to be run by Ansible.")
    ansible_ssh_extra_args: StrList = Field(
        default_factory=list,
        description=("Specifies --ssh-extra-args on command line defaults to -o IdentitiesOnly=yes"),
    )
    groups: StrList = Field(
        default_factory=list,
        description=(
            "The groups into which the Ansible host should be placed. When unspecified, the host is not "
            "associated with any groups."
        ),
    )
    empty_groups: StrList = Field(
        default_factory=list,
        description=("The groups which should be present in inventory file but remain empty."),
    )
    host_alias: Str = Field(
        "",
        description=(
            "The alias by which the Ansible host should be known. Defaults to `default`. This setting "
            "is ignored when using a custom inventory file."
        ),
    )
    user: Str = Field(
        "",
        description=(
            "The `ansible_user` to use. Defaults to the user running packer, NOT the user set for your "
            "communicator. If you want to use the same user as the communicator, you will need to "
            "manually set it again in this field."
        ),
    )
    local_port: Int = Field(
        0,
        description=(
            "The port on which to attempt to listen for SSH connections. This value is a starting "
            "point. The provisioner will attempt listen for SSH connections on the first available of "
            "ten ports, starting at `local_port`. A system-chosen port is used when `local_port` is "
            "missing or empty."
        ),
    )
    ssh_host_key_file: Str = Field(
        "",
        description=(
            "The SSH key that will be used to run the SSH server on the host machine to forward "
            "commands to the target machine. Ansible connects to this server and will validate the "
            "identity of the server using the system known_hosts. The default behavior is to generate "
            "and use a onetime key. Host key checking is disabled via the `ANSIBLE_HOST_KEY_CHECKING` "
            "environment variable if the key is generated."
        ),
    )
    ssh_authorized_key_file: Str = Field(
        "",
        description=(
            "The SSH public key of the Ansible `ssh_user`. The default behavior is to generate and use "
            "a onetime key. If this key is generated, the corresponding private key is passed to "
            "`ansible-playbook` with the `-e ansible_ssh_private_key_file` option."
        ),
    )
    ansible_proxy_key_type: Str = Field(
        "",
        description=(
            "Change the key type used for the adapter. Supported values: * ECDSA (default) * RSA NOTE: "
            "using RSA may cause problems if the key is used to authenticate with rsa-sha1 as modern "
            "OpenSSH versions reject this by default as it is unsafe."
        ),
    )
    sftp_command: Str = Field(
        "",
        description=(
            "The command to run on the machine being provisioned by Packer to handle the SFTP protocol "
            "that Ansible will use to transfer files. The command should read and write on stdin and "
            "stdout, respectively. Defaults to `/usr/lib/sftp-server -e`."
        ),
    )
    skip_version_check: Bool = Field(
        False,
        description=(
            "Check if ansible is installed prior to running. Set this to `true`, for example, if you're "
            "going to install ansible during the packer run."
        ),
    )
    use_sftp: Bool = Field(False, description="Use SFTP instead of SCP to transfer files.")
    inventory_directory: Str = Field(
        "",
        description=(
            "The directory in which to place the temporary generated Ansible inventory file. By "
            "default, this is the system-specific temporary file location. The fully-qualified name of "
            "this temporary file will be passed to the `-i` argument of the `ansible` command when this "
            "provisioner runs ansible. Specify this if you have an existing inventory directory with "
            "`host_vars` `group_vars` that you would like to use in the playbook that this provisioner "
            "will run."
        ),
    )
    inventory_file_template: Str = Field(
        "",
        description=(
            "This template represents the format for the lines added to the temporary inventory file "
            "that Packer will create to run Ansible against your image. The default for recent versions "
            'of Ansible is: "{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }} '
            'ansible_port={{ .Port }}\\n" Available template engines are: This option is a template '
            "engine; variables available to you include the examples in the default (Host, HostAlias, "
            'User, Port) as well as any variables available to you via the "build" template engine.'
        ),
    )
    inventory_file: Str = Field(
        "",
        description=(
            "The inventory file to use during provisioning. When unspecified, Packer will create a "
            "temporary inventory file and will use the `host_alias`."
        ),
    )
    keep_inventory_file: Bool = Field(
        False,
        description=(
            "If `true`, the Ansible provisioner will not delete the temporary inventory file it creates "
            "in order to connect to the instance. This is useful if you are trying to debug your "
            'ansible run and using "--on-error=ask" in order to leave your instance running while you '
            "test your playbook. this option is not used if you set an `inventory_file`."
        ),
    )
    galaxy_file: Str = galaxy_file_field()
    galaxy_command: Str = galaxy_command_field()
    galaxy_force_install: Bool = galaxy_force_install_field()
    galaxy_force_with_deps: Bool = Field(
        False,
        description=(
            "Force overwriting an existing role and its dependencies. Adds `--force-with-deps` option "
            "to `ansible-galaxy` command. By default, this is `false`."
        ),
    )
    roles_path: Str = Field(
        "",
        description=(
            "The path to the directory on your local system in which to install the roles. Adds "
            "`--roles-path /path/to/your/roles` to `ansible-galaxy` command. By default, this is empty, "
            "and thus `--roles-path` option is not added to the command."
        ),
    )
    collections_path: Str = Field(
        "",
        description=(
            "The path to the directory on your local system in which to install the collections. Adds "
            "`--collections-path /path/to/your/collections` to `ansible-galaxy` command. By default, "
            "this is empty, and thus `--collections-path` option is not added to the command."
        ),
    )
    use_proxy: Trilean = Field(
        None,
        description=(
            "When `true`, set up a localhost proxy adapter so that Ansible has an IP address to connect "
            "to, even if your guest does not have an IP address. For example, the adapter is necessary "
            "for Docker builds to use the Ansible provisioner. If you set this option to `false`, but "
            "Packer cannot find an IP address to connect Ansible to, it will automatically set up the "
            "adapter anyway."
        ),
    )
    ansible_winrm_use_http: Bool = Field(
        False,
        description=(
            "Force WinRM to use HTTP instead of HTTPS. Set this to true to force Ansible to use HTTP "
            "instead of HTTPS to communicate over WinRM to the destination host. Ansible uses the port "
            "as a heuristic to determine whether to use HTTP or not. In the current state, Packer "
            "assigns a random port for connecting to WinRM and Ansible's heuristic fails to determine "
            "that it should be using HTTP, even when the communicator is setup to use it."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs: list[Problem | None] = []
        if not self.playbook_file:
            errs.append(ctx.problem("playbook_file must be specified.", "playbook_file"))
        else:
            errs.append(file_problem(ctx, "playbook_file", self.playbook_file))
        for key in ("galaxy_file", "ssh_authorized_key_file", "ssh_host_key_file"):
            value = getattr(self, key)
            if value:
                errs.append(file_problem(ctx, key, value))
        if self.inventory_directory:
            errs.append(file_problem(ctx, "inventory_directory", self.inventory_directory, directory=True))
        if self.ansible_proxy_key_type.upper() not in ("", "ECDSA", "RSA"):
            errs.append(ctx.problem(
                f"Invalid value for ansible_proxy_key_type: {json.dumps(self.ansible_proxy_key_type)}. "
                "Supported values are ECDSA or RSA.", "ansible_proxy_key_type"))
        if self.local_port > 65535:
            errs.append(ctx.problem(f"local_port: {self.local_port} must be a valid port", "local_port"))
        return [e for e in errs if e is not None]

    def local_inputs(self) -> list[tuple[str, str]]:
        keys = ("playbook_file", "galaxy_file", "inventory_file", "inventory_directory", "roles_path",
                "collections_path")
        return [(k, getattr(self, k)) for k in keys if getattr(self, k)]
