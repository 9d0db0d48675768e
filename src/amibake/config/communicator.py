"""Communicator options (``communicator``, ``ssh_*``, ``winrm_*``), shared by every builder that
connects to a machine. Packer's SDK ``communicator.Config``; defaults are the ones its ``Prepare``
fills in, so ``ssh_port`` reads 22 and ``ssh_timeout`` 300 seconds when unset.
"""

import os
from typing import Any, ClassVar

from pydantic import Field, model_validator

from amibake.communicator.settings import SSHSettings
from amibake.config.base import CheckContext, PluginConfig
from amibake.config.durations import Duration
from amibake.config.weak import Bool, Int, Str, StrList, Trilean
from amibake.errors import Problem

COMMUNICATOR_TYPES = ("ssh", "winrm", "none", "docker", "dockerWindowsContainer")


class CommunicatorConfig(PluginConfig):
    """How Packer talks to the machine it builds."""

    #: how amibake reaches the machine does not change what is on it; the user it provisions as and
    #: ``ssh_clear_authorized_keys`` (whether the temporary key stays on the image) do
    not_image_shaping: ClassVar[frozenset[str]] = frozenset({
        "communicator", "pause_before_connecting", "ssh_host", "ssh_port", "ssh_password",
        "ssh_keypair_name", "temporary_key_pair_name", "ssh_ciphers", "ssh_key_exchange_algorithms",
        "ssh_private_key_file", "ssh_certificate_file", "ssh_pty", "ssh_timeout", "ssh_wait_timeout",
        "ssh_agent_auth", "ssh_disable_agent_forwarding", "ssh_handshake_attempts", "ssh_bastion_host",
        "ssh_bastion_port", "ssh_bastion_agent_auth", "ssh_bastion_username", "ssh_bastion_password",
        "ssh_bastion_interactive", "ssh_bastion_private_key_file", "ssh_bastion_certificate_file",
        "ssh_file_transfer_method", "ssh_proxy_host", "ssh_proxy_port", "ssh_proxy_username",
        "ssh_proxy_password", "ssh_keep_alive_interval", "ssh_read_write_timeout", "ssh_remote_tunnels",
        "ssh_local_tunnels", "temporary_key_pair_type", "temporary_key_pair_bits", "winrm_password",
        "winrm_host", "winrm_no_proxy", "winrm_port", "winrm_timeout", "winrm_use_ssl", "winrm_insecure",
        "winrm_use_ntlm",
    })

    deprecated_keys: ClassVar[dict[str, str]] = {
        "ssh_wait_timeout": "ssh_wait_timeout is deprecated; use ssh_timeout",
    }

    communicator: Str = Field(
        "ssh",
        description=(
            "Packer currently supports three kinds of communicators: - `none` - No communicator will be "
            "used. If this is set, most provisioners also can't be used. - `ssh` - An SSH connection "
            "will be established to the machine. This is usually the default. - `winrm` - A WinRM "
            "connection will be established. In addition to the above, some builders have custom "
            'communicators they can use. For example, the Docker builder has a "docker" communicator '
            "that uses `docker exec` and `docker cp` to execute scripts and copy files."
        ),
    )
    pause_before_connecting: Duration = Field(
        0.0,
        description=(
            "We recommend that you enable SSH or WinRM as the very last step in your guest's bootstrap "
            "script, but sometimes you may have a race condition where you need Packer to wait before "
            "attempting to connect to your guest. If you end up in this situation, you can use the "
            "template option `pause_before_connecting`. By default, there is no pause. For example if "
            "you set `pause_before_connecting` to `10m` Packer will check whether it can connect, as "
            "normal. But once a connection attempt is successful, it will disconnect and then wait 10 "
            "minutes before connecting to the guest and beginning provisioning."
        ),
    )
    ssh_host: Str = Field(
        "",
        description=("The address to SSH to. This usually is automatically configured by the builder."),
    )
    ssh_port: Int = Field(22, description="The port to connect to SSH. This defaults to `22`.")
    ssh_username: Str = Field("", description="The username to connect to SSH with. Required if using SSH.")
    ssh_password: Str = Field("", description="A plaintext password to use to authenticate with SSH.")
    ssh_keypair_name: Str = Field(
        "",
        description=(
            "If specified, this is the key that will be used for SSH with the machine. The key must "
            "match a key pair name loaded up into the remote. By default, this is blank, and Packer "
            "will generate a temporary keypair unless `ssh_password` is used. `ssh_private_key_file` or "
            "`ssh_agent_auth` must be specified when `ssh_keypair_name` is utilized."
        ),
    )
    temporary_key_pair_name: Str = Field(
        "",
        description=(
            "The name of the temporary key pair to generate. By default, Packer generates a name that "
            "looks like `packer_<UUID>`, where &lt;UUID&gt; is a 36 character unique identifier."
        ),
    )
    ssh_ciphers: StrList = Field(
        default_factory=list,
        description=(
            "This overrides the value of ciphers supported by default by Golang. The default value is [ "
            '"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", '
            '"aes192-ctr", "aes256-ctr", ] Valid options for ciphers include: "aes128-ctr", '
            '"aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com", '
            '"chacha20-poly1305@openssh.com", "arcfour256", "arcfour128", "arcfour", '
            '"aes128-cbc", "3des-cbc",'
        ),
    )
    ssh_clear_authorized_keys: Bool = Field(
        False,
        description=(
            "If true, Packer will attempt to remove its temporary key from `~/.ssh/authorized_keys` and "
            "`/root/.ssh/authorized_keys`. This is a mostly cosmetic option, since Packer will delete "
            "the temporary private key from the host system regardless of whether this is set to true "
            '(unless the user has set the `-debug` flag). Defaults to "false"; currently only works '
            "on guests with `sed` installed."
        ),
    )
    ssh_key_exchange_algorithms: StrList = Field(
        default_factory=list,
        description=(
            "If set, Packer will override the value of key exchange (kex) algorithms supported by "
            'default by Golang. Acceptable values include: "curve25519-sha256@libssh.org", '
            '"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", '
            '"diffie-hellman-group14-sha1", and "diffie-hellman-group1-sha1".'
        ),
    )
    ssh_private_key_file: Str = Field(
        "",
        description=(
            "Path to a PEM encoded private key file to use to authenticate with SSH. The `~` can be "
            "used in path and will be expanded to the home directory of current user."
        ),
    )
    ssh_certificate_file: Str = Field(
        "",
        description=(
            "Path to user certificate used to authenticate with SSH. The `~` can be used in path and "
            "will be expanded to the home directory of current user."
        ),
    )
    ssh_pty: Bool = Field(
        False,
        description=("If `true`, a PTY will be requested for the SSH connection. This defaults to `false`."),
    )
    ssh_timeout: Duration = Field(
        300.0,
        description=(
            "The time to wait for SSH to become available. Packer uses this to determine when the "
            "machine has booted so this is usually quite long. Example value: `10m`. This defaults to "
            "`5m`, unless `ssh_handshake_attempts` is set."
        ),
    )
    ssh_wait_timeout: Duration = Field(0.0, description="Deprecated in favor of SSHTimeout")
    ssh_agent_auth: Bool = Field(
        False,
        description=(
            "If true, the local SSH agent will be used to authenticate connections to the source "
            "instance. No temporary keypair will be created, and the values of `ssh_password` and "
            "`ssh_private_key_file` will be ignored. The environment variable `SSH_AUTH_SOCK` must be "
            "set for this option to work properly."
        ),
    )
    ssh_disable_agent_forwarding: Bool = Field(
        False,
        description=("If true, SSH agent forwarding will be disabled. Defaults to `false`."),
    )
    ssh_handshake_attempts: Int = Field(
        10,
        description=(
            "The number of handshakes to attempt with SSH once it can connect. This defaults to `10`, "
            "unless a `ssh_timeout` is set."
        ),
    )
    ssh_bastion_host: Str = Field("", description="A bastion host to use for the actual SSH connection.")
    ssh_bastion_port: Int = Field(22, description="The port of the bastion host. Defaults to `22`.")
    ssh_bastion_agent_auth: Bool = Field(
        False,
        description=(
            "If `true`, the local SSH agent will be used to authenticate with the bastion host. "
            "Defaults to `false`."
        ),
    )
    ssh_bastion_username: Str = Field("", description="The username to connect to the bastion host.")
    ssh_bastion_password: Str = Field(
        "",
        description=("The password to use to authenticate with the bastion host."),
    )
    ssh_bastion_interactive: Bool = Field(
        False,
        description=("If `true`, the keyboard-interactive used to authenticate with bastion host."),
    )
    ssh_bastion_private_key_file: Str = Field(
        "",
        description=(
            "Path to a PEM encoded private key file to use to authenticate with the bastion host. The "
            "`~` can be used in path and will be expanded to the home directory of current user."
        ),
    )
    ssh_bastion_certificate_file: Str = Field(
        "",
        description=(
            "Path to user certificate used to authenticate with bastion host. The `~` can be used in "
            "path and will be expanded to the home directory of current user."
        ),
    )
    ssh_file_transfer_method: Str = Field(
        "scp",
        description=(
            "`scp` or `sftp` - How to transfer files, Secure copy (default) or SSH File Transfer "
            "Protocol. **NOTE**: Guests using Windows with Win32-OpenSSH v9.1.0.0p1-Beta, scp (the "
            "default protocol for copying data) returns a a non-zero error code since the MOTW cannot "
            "be set, which cause any file transfer to fail. As a workaround you can override the "
            'transfer protocol with SFTP instead `ssh_file_transfer_method = "sftp"`.'
        ),
    )
    ssh_proxy_host: Str = Field("", description="A SOCKS proxy host to use for SSH connection")
    ssh_proxy_port: Int = Field(1080, description="A port of the SOCKS proxy. Defaults to `1080`.")
    ssh_proxy_username: Str = Field(
        "",
        description=("The optional username to authenticate with the proxy server."),
    )
    ssh_proxy_password: Str = Field(
        "",
        description=("The optional password to use to authenticate with the proxy server."),
    )
    ssh_keep_alive_interval: Duration = Field(
        5.0,
        description=(
            'How often to send "keep alive" messages to the server. Set to a negative value (`-1s`) '
            "to disable. Example value: `10s`. Defaults to `5s`."
        ),
    )
    ssh_read_write_timeout: Duration = Field(
        0.0,
        description=(
            "The amount of time to wait for a remote command to end. This might be useful if, for "
            "example, packer hangs on a connection after a reboot. Example: `5m`. Disabled by default."
        ),
    )
    ssh_remote_tunnels: StrList = Field(
        default_factory=list,
        description=(
            "Remote tunnels forward a port from your local machine to the instance. Format: "
            '["REMOTE_PORT:LOCAL_HOST:LOCAL_PORT"] Example: "9090:localhost:80" forwards '
            "localhost:9090 on your machine to port 80 on the instance."
        ),
    )
    ssh_local_tunnels: StrList = Field(
        default_factory=list,
        description=(
            "Local tunnels forward a port from the instance to your local machine. Format: "
            '["LOCAL_PORT:REMOTE_HOST:REMOTE_PORT"] Example: "8080:localhost:3000" allows the '
            "instance to access your local machine’s port 3000 via localhost:8080."
        ),
    )
    temporary_key_pair_type: Str = Field(
        "rsa",
        description=(
            "`dsa` | `ecdsa` | `ed25519` | `rsa` ( the default ) Specifies the type of key to create. "
            "The possible values are 'dsa', 'ecdsa', 'ed25519', or 'rsa'. NOTE: DSA is deprecated and "
            "no longer recognized as secure, please consider other alternatives like RSA or ED25519."
        ),
    )
    temporary_key_pair_bits: Int = Field(
        0,
        description=(
            "Specifies the number of bits in the key to create. For RSA keys, the minimum size is 1024 "
            "bits and the default is 4096 bits. Generally, 3072 bits is considered sufficient. DSA keys "
            "must be exactly 1024 bits as specified by FIPS 186-2. For ECDSA keys, bits determines the "
            "key length by selecting from one of three elliptic curve sizes: 256, 384 or 521 bits. "
            "Attempting to use bit lengths other than these three values for ECDSA keys will fail. "
            "Ed25519 keys have a fixed length and bits will be ignored."
        ),
    )
    winrm_username: Str = Field("", description="The username to use to connect to WinRM.")
    winrm_password: Str = Field("", description="The password to use to connect to WinRM.")
    winrm_host: Str = Field(
        "",
        description=(
            "The address for WinRM to connect to. NOTE: If using an Amazon EBS builder, you can specify "
            "the interface WinRM connects to via `ssh_interface`"
        ),
    )
    winrm_no_proxy: Bool = Field(
        False,
        description=(
            "Setting this to `true` adds the remote `host:port` to the `NO_PROXY` environment variable. "
            "This has the effect of bypassing any configured proxies when connecting to the remote "
            "host. Default to `false`."
        ),
    )
    winrm_port: Int = Field(
        5985,
        description=(
            "The WinRM port to connect to. This defaults to `5985` for plain unencrypted connection and "
            "`5986` for SSL when `winrm_use_ssl` is set to true."
        ),
    )
    winrm_timeout: Duration = Field(
        1800.0,
        description=(
            "The amount of time to wait for WinRM to become available. This defaults to `30m` since "
            "setting up a Windows machine generally takes a long time."
        ),
    )
    winrm_use_ssl: Bool = Field(False, description="If `true`, use HTTPS for WinRM.")
    winrm_insecure: Bool = Field(
        False,
        description=("If `true`, do not check server certificate chain and host name."),
    )
    winrm_use_ntlm: Trilean = Field(
        None,
        description=(
            "If `true`, NTLMv2 authentication (with session security) will be used for WinRM, rather "
            "than default (basic authentication), removing the requirement for basic authentication to "
            "be enabled within the target guest. Further reading for remote connection authentication "
            "can be found here.aspx)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _communicator_defaults(cls, data: Any) -> Any:
        """Defaults that depend on other options, as the SDK's ``Prepare`` sets them."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("ssh_wait_timeout") not in (None, "", 0) and data.get("ssh_timeout") in (None, ""):
            data["ssh_timeout"] = data["ssh_wait_timeout"]
        if data.get("winrm_port") in (None, 0, "", "0") and _truthy(data.get("winrm_use_ssl")):
            data["winrm_port"] = 5986
        return data

    @property
    def ssh_bastion_key_file(self) -> str:
        """The bastion's key: ``ssh_bastion_private_key_file``, else ``ssh_private_key_file``."""
        return self.ssh_bastion_private_key_file or self.ssh_private_key_file

    def check(self, ctx: CheckContext) -> list[Problem]:
        return self.check_communicator(ctx)

    def connection_data(self) -> dict[str, Any]:
        """The communicator's part of Packer's build data (``ConnType``, and ``Port``, ``User`` and
        ``Password`` of the SSH or WinRM connection, as the SDK's ``Config.Port()``... give them)."""
        winrm = self.communicator == "winrm"
        return {
            "ConnType": self.communicator,
            "Port": self.winrm_port if winrm else self.ssh_port,
            "User": self.winrm_username if winrm else self.ssh_username,
            "Password": self.winrm_password if winrm else self.ssh_password,
            "WinRMPassword": self.winrm_password,
        }

    def ssh_settings(self, host: str, *, port: int | None = None, private_key_pem: str = "") -> SSHSettings:
        """What the SSH communicator needs, from these options (the one mapping). ``host`` and
        ``private_key_pem`` come from the build (the instance's address, the temporary key)."""
        bastion = None
        if self.ssh_bastion_host:
            bastion = SSHSettings(
                host=self.ssh_bastion_host, port=self.ssh_bastion_port, username=self.ssh_bastion_username,
                password=self.ssh_bastion_password or None,
                private_key_file=self.ssh_bastion_key_file or None,
                # as the SDK's Prepare: the instance's certificate when the bastion has none
                certificate_file=self.ssh_bastion_certificate_file or self.ssh_certificate_file or None,
                agent_auth=self.ssh_bastion_agent_auth, interactive=self.ssh_bastion_interactive,
                timeout=self.ssh_timeout, keepalive_interval=self.ssh_keep_alive_interval,
            )
        return SSHSettings(
            host=host,
            port=self.ssh_port if port is None else port,
            username=self.ssh_username,
            password=self.ssh_password or None,
            private_key_pem=private_key_pem or None,
            certificate_file=self.ssh_certificate_file or None,
            agent_auth=self.ssh_agent_auth,
            timeout=self.ssh_timeout,
            handshake_attempts=self.ssh_handshake_attempts,
            keepalive_interval=self.ssh_keep_alive_interval,
            read_write_timeout=self.ssh_read_write_timeout,
            file_transfer_method=self.ssh_file_transfer_method,
            pty=self.ssh_pty,
            ciphers=tuple(self.ssh_ciphers),
            kex_algorithms=tuple(self.ssh_key_exchange_algorithms),
            bastion=bastion,
            agent_forwarding=not self.ssh_disable_agent_forwarding and bool(os.environ.get("SSH_AUTH_SOCK")),
            local_tunnels=tuple(self.ssh_local_tunnels),
            remote_tunnels=tuple(self.ssh_remote_tunnels),
        )

    def refused_communicator(self, ctx: CheckContext) -> list[Problem]:
        """A communicator type Packer accepts but amibake cannot connect with (a registered
        communicator without an implementation) is refused by name at validate: Packer itself would
        fail only in the build, after launching, with "unknown communicator type" (docker's) or
        connect over WinRM, which amibake does not have."""
        from amibake import registry

        spec = registry.lookup("communicator", self.communicator)
        if spec is None or spec.runnable:
            return []
        said = f'communicator "{self.communicator}" is not supported by amibake yet: {spec.summary}'
        return [ctx.problem(said, "communicator")]

    def check_communicator(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        if self.communicator not in COMMUNICATOR_TYPES:
            return [p(f"Communicator type {self.communicator} is invalid", "communicator")]
        refused = self.refused_communicator(ctx)
        if self.communicator == "winrm":
            if not self.winrm_username:
                return [p("winrm_username must be specified.", "winrm_username"), *refused]
            return refused
        if refused:
            return refused
        if self.communicator != "ssh":
            return []
        errs: list[Problem] = []
        if not self.ssh_private_key_file and self.ssh_certificate_file:
            errs.append(
                p(
                    "ssh_private_key_file must be specified if ssh_certificate_file is specified",
                    "ssh_certificate_file",
                )
            )
        if not self.ssh_bastion_private_key_file and self.ssh_bastion_certificate_file:
            errs.append(
                p(
                    "ssh_bastion_private_key_file must be specified if "
                    "ssh_bastion_certificate_file is specified",
                    "ssh_bastion_certificate_file",
                )
            )
        if not self.ssh_username:
            errs.append(
                p(
                    "An ssh_username must be specified\n  Note: some builders used to default "
                    'ssh_username to "root".',
                    "ssh_username",
                )
            )
        if self.ssh_private_key_file:
            missing = ctx.stat_error(self.ssh_private_key_file)
            if missing:
                errs.append(p(f"ssh_private_key_file is invalid: {missing}", "ssh_private_key_file"))
        if self.ssh_bastion_host:
            key = self.ssh_bastion_key_file
            if not self.ssh_bastion_password and not key and not self.ssh_bastion_agent_auth:
                errs.append(
                    p(
                        "ssh_bastion_password, ssh_bastion_private_key_file or "
                        "ssh_bastion_agent_auth must be specified",
                        "ssh_bastion_host",
                    )
                )
            elif key and self.ssh_bastion_private_key_file:
                missing = ctx.stat_error(key)
                if missing:
                    errs.append(
                        p(
                            f"ssh_bastion_private_key_file is invalid: {missing}",
                            "ssh_bastion_private_key_file",
                        )
                    )
        if self.ssh_file_transfer_method not in ("scp", "sftp"):
            errs.append(
                p(
                    f"ssh_file_transfer_method ('{self.ssh_file_transfer_method}') is invalid, "
                    "valid methods: sftp, scp",
                    "ssh_file_transfer_method",
                )
            )
        if self.ssh_bastion_host and self.ssh_proxy_host:
            errs.append(
                p("please specify either ssh_bastion_host or ssh_proxy_host, not both", "ssh_bastion_host")
            )
        for name, tunnels in (
            ("ssh_local_tunnels", self.ssh_local_tunnels),
            ("ssh_remote_tunnels", self.ssh_remote_tunnels),
        ):
            for i, spec in enumerate(tunnels):
                reason = tunnel_error(spec)
                if reason:
                    errs.append(p(f"{name} ('{spec}') is invalid: {reason}", f"{name}[{i}]"))
        return errs


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value in ("1", "t", "T", "TRUE", "true", "True")
    return bool(value)


def tunnel_error(spec: str) -> str | None:
    """Why a ``port:host:port`` tunnel argument is malformed (the SDK's messages), or None."""
    listen, sep, forward = spec.partition(":")
    if not sep:
        return f"Error parsing tunnel '{spec}': [{spec}]"
    host, colon, port = forward.rpartition(":")
    if not colon or (":" in host and not (host.startswith("[") and host.endswith("]"))):
        return f"Error parsing forwarding, must be a tcp address: address {forward}: missing port in address"
    if not _is_go_int(port):
        return (
            "Error parsing forwarding port, must be a valid port: "
            f'strconv.Atoi: parsing "{port}": invalid syntax'
        )
    if not _is_go_int(listen):
        return (
            "Error parsing listening port, must be a valid port: "
            f'strconv.Atoi: parsing "{listen}": invalid syntax'
        )
    return None


def _is_go_int(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body.isascii() and body.isdigit()
