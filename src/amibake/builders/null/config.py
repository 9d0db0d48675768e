"""The ``null`` builder's options: Packer's ``builder/null/config.go`` (the SDK's communicator
options and nothing else) and its ``Prepare`` rules.

The communicator options are declared once, in :class:`amibake.config.communicator.CommunicatorConfig`.
The ones a test has not yet shown taking effect through this builder are refused by name
(:attr:`NullConfig.unsupported`), never accepted and ignored.
"""

from typing import ClassVar

from amibake.config.base import CheckContext
from amibake.config.communicator import CommunicatorConfig
from amibake.errors import Problem

_NOT_PROVEN = "not carried out by amibake's null builder yet"

#: the options of CommunicatorConfig the null builder carries out (tests/stack/test_null_builder.py,
#: tests/stack/test_winrm_builders.py)
CARRIED_OUT = frozenset(
    {"communicator", "ssh_host", "ssh_port", "ssh_username", "ssh_private_key_file", "ssh_timeout",
     "ssh_wait_timeout", "winrm_username", "winrm_password", "winrm_host", "winrm_no_proxy", "winrm_port",
     "winrm_timeout", "winrm_use_ssl", "winrm_insecure", "winrm_use_ntlm"}
)


class NullConfig(CommunicatorConfig):
    """Packer's null builder: ``communicator`` (``ssh``, ``winrm`` or ``none``) and the connection options."""

    unsupported: ClassVar[dict[str, str]] = {
        key: _NOT_PROVEN
        for key in (
            "pause_before_connecting", "ssh_password", "ssh_keypair_name", "temporary_key_pair_name",
            "ssh_ciphers", "ssh_clear_authorized_keys", "ssh_key_exchange_algorithms",
            "ssh_certificate_file", "ssh_pty", "ssh_agent_auth", "ssh_disable_agent_forwarding",
            "ssh_handshake_attempts", "ssh_bastion_host", "ssh_bastion_port", "ssh_bastion_agent_auth",
            "ssh_bastion_username", "ssh_bastion_password", "ssh_bastion_interactive",
            "ssh_bastion_private_key_file", "ssh_bastion_certificate_file", "ssh_file_transfer_method",
            "ssh_proxy_host", "ssh_proxy_port", "ssh_proxy_username", "ssh_proxy_password",
            "ssh_keep_alive_interval", "ssh_read_write_timeout", "ssh_remote_tunnels", "ssh_local_tunnels",
            "temporary_key_pair_type", "temporary_key_pair_bits",
        )
    }  # fmt: skip

    def _prefix(self) -> str:
        return "winrm" if self.communicator == "winrm" else "ssh"

    def host(self) -> str:
        """The SDK's ``Config.Host()``: ``winrm_host`` for WinRM, ``ssh_host`` for SSH."""
        return self.winrm_host if self.communicator == "winrm" else self.ssh_host

    def user(self) -> str:
        """The SDK's ``Config.User()``."""
        return self.winrm_username if self.communicator == "winrm" else self.ssh_username

    def password(self) -> str:
        """The SDK's ``Config.Password()``."""
        return self.winrm_password if self.communicator == "winrm" else self.ssh_password

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_communicator(ctx)
        if self.communicator == "none":
            return errs
        p = ctx.problem
        if not self.host():
            errs.append(p("a Host must be specified, please reference your communicator documentation",
                          f"{self._prefix()}_host"))
        if not self.user():
            errs.append(p("a Username must be specified, please reference your communicator documentation",
                          f"{self._prefix()}_username"))
        if not self.ssh_agent_auth and not self.password() and not self.ssh_private_key_file:
            errs.append(p("one authentication method must be specified, please reference your communicator "
                          "documentation"))
        if (self.ssh_agent_auth and (self.ssh_password or self.ssh_private_key_file)) or (
            self.ssh_password and self.ssh_private_key_file
        ):
            errs.append(p("only one of ssh_agent_auth, ssh_password, and ssh_private_key_file must be "
                          "specified"))
        return errs
