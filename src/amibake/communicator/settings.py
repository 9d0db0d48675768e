"""How to reach a machine over SSH: the communicator's input, derived from a template's ``ssh_*``
options in one place (:meth:`amibake.config.communicator.CommunicatorConfig.ssh_settings`).

Light on purpose (no asyncssh import): configs build it during ``validate`` and builds before they
connect.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SSHSettings:
    """How to reach the machine; built by the builder from the template's ``ssh_*`` options."""

    host: str
    port: int = 22
    username: str = ""
    password: str | None = field(default=None, repr=False)
    private_key_pem: str | None = field(default=None, repr=False)
    private_key_file: str | None = None
    certificate_file: str | None = None
    agent_auth: bool = False
    #: total time to wait for the machine to accept SSH (``ssh_timeout``)
    timeout: float = 300.0
    #: authentication/handshake failures tolerated before giving up (``ssh_handshake_attempts``)
    handshake_attempts: int = 10
    #: seconds between keepalive requests (``ssh_keep_alive_interval``); 0 or negative: none
    keepalive_interval: float = 5.0
    file_transfer_method: str = "scp"
    pty: bool = False
    ciphers: tuple[str, ...] = ()
    kex_algorithms: tuple[str, ...] = ()
    bastion: SSHSettings | None = None
    #: drop the connection when nothing arrives for this long (``ssh_read_write_timeout``, a read
    #: deadline as Packer's); 0 = never
    read_write_timeout: float = 0.0
    remote_path_sep: str = "/"
    #: amibake's own: upload directory trees as one tar stream when the remote has tar
    tar_dirs: bool = True
    #: first pause between connection attempts; doubles up to 2 s
    retry_interval: float = 0.25
    #: forward the local SSH agent (``SSH_AUTH_SOCK``) to remote commands
    agent_forwarding: bool = False
    #: ``LOCAL_PORT:REMOTE_HOST:REMOTE_PORT`` forwards opened with the connection
    local_tunnels: tuple[str, ...] = ()
    #: ``REMOTE_PORT:LOCAL_HOST:LOCAL_PORT`` forwards opened with the connection
    remote_tunnels: tuple[str, ...] = ()
    #: ask keyboard-interactive questions on the terminal (``ssh_bastion_interactive``); without it
    #: they are answered with ``password``
    interactive: bool = False
