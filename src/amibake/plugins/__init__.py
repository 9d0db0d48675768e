"""Every plugin amibake knows, under its Packer type name. One line each; see :mod:`amibake.registry`."""

from typing import Any

from amibake.plugins.amazon import facts as amz
from amibake.registry import Kind, PluginSpec, register

_AMZ = "amibake.plugins.amazon.config"
_AMZ_DS = "amibake.plugins.amazon.datasources"
_AMZ_DS_CONFIG = "amibake.plugins.amazon.datasource_configs"
_DS = "amibake.datasources"


def _amazon(type_name: str, config: str, impl: str = "", *, generated: tuple[str, ...] = amz.GENERATED,
            reuse: str = "", checks: bool = False) -> PluginSpec:
    """An amazon builder: the plugin's late keys, build data, template functions and single blocks."""
    return PluginSpec("builder", type_name, config, impl, reuse=reuse, late_keys=amz.LATE_FIELDS,
                      build_data_keys=generated, template_funcs=amz.TEMPLATE_FUNCS,
                      renamed_funcs=amz.RENAMED_FUNCS, single_blocks=amz.SINGLE_BLOCKS, plugin=amz.PLUGIN,
                      hcl2_block_keys=amz.HCL2_BLOCK_KEYS, cleanup=amz.CLEANUP, prune=amz.PRUNE,
                      checks=checks)


_EXEC = frozenset({"execute_command"})
_OUTPUT = frozenset({"output"})
_POWERSHELL_LATE = frozenset({"execute_command", "elevated_execute_command"})


def _in_folder(kind: Kind, package: str, impl_module: str, type_name: str, config: str, impl: str,
               facts: dict[str, Any]) -> PluginSpec:
    """A plugin that is one folder, ``<package>/<type name, "-" as "_">/``: ``config`` names the class
    in its ``config.py`` (its options), ``impl`` the one in its ``<impl_module>.py`` ("" when amibake
    only validates the type); ``facts`` are :class:`PluginSpec`'s other fields."""
    folder = f"{package}.{type_name.replace('-', '_')}"
    return PluginSpec(kind, type_name, f"{folder}.config:{config}",
                      f"{folder}.{impl_module}:{impl}" if impl else "", **facts)


def _provisioner(type_name: str, config: str, impl: str = "", **facts: Any) -> PluginSpec:
    """A provisioner in ``amibake/provisioners/<type>/`` (``config.py``, ``provisioner.py``)."""
    return _in_folder("provisioner", "amibake.provisioners", "provisioner", type_name, config, impl, facts)


def _post_processor(type_name: str, config: str, impl: str = "", **facts: Any) -> PluginSpec:
    """A post-processor in ``amibake/postprocessors/<type>/`` (``config.py``, ``postprocessor.py``)."""
    return _in_folder("post-processor", "amibake.postprocessors", "postprocessor", type_name, config, impl,
                      facts)


# builders
register(_amazon("amazon-ebs", f"{_AMZ}:EbsConfig", "amibake.plugins.amazon.ebs:EbsBuilder",
                 reuse="amibake.plugins.amazon.reuse:AmiReuse", checks=True))
register(_amazon("amazon-ebssurrogate", f"{_AMZ}_surrogate:EbsSurrogateConfig",
                 "amibake.plugins.amazon.surrogate:EbsSurrogateBuilder"))
register(_amazon("amazon-ebsvolume", f"{_AMZ}_ebsvolume:EbsVolumeConfig",
                 "amibake.plugins.amazon.ebsvolume:EbsVolumeBuilder"))
register(_amazon("amazon-chroot", f"{_AMZ}_chroot:ChrootConfig",
                 "amibake.plugins.amazon.chroot:ChrootBuilder", generated=amz.CHROOT_GENERATED))
register(_amazon("amazon-instance", f"{_AMZ}_instance:InstanceConfig",
                 "amibake.plugins.amazon.instance:InstanceBuilder"))
register(_amazon("amibake-local", "amibake.plugins.amazon.local.config:LocalConfig",
                 "amibake.plugins.amazon.local.builder:LocalBuilder", generated=("BuildRegion", "MountPath"),
                 reuse="amibake.plugins.amazon.local.reuse:LocalReuse"))
register(PluginSpec("builder", "null", "amibake.builders.null.config:NullConfig",
                    "amibake.builders.null.builder:NullBuilder"))

# provisioners
register(_provisioner("shell", "ShellConfig", "ShellProvisioner", late_keys=_EXEC))
register(_provisioner("file", "FileConfig", "FileProvisioner"))
register(_provisioner("shell-local", "ShellLocalConfig", "ShellLocalProvisioner", late_keys=_EXEC))
register(_provisioner("breakpoint", "BreakpointConfig", "BreakpointProvisioner"))
register(_provisioner("powershell", "PowershellConfig", "PowershellProvisioner", late_keys=_POWERSHELL_LATE))
register(_provisioner("windows-restart", "WindowsRestartConfig", "WindowsRestartProvisioner"))
register(_provisioner("windows-shell", "WindowsShellConfig", "WindowsShellProvisioner", late_keys=_EXEC))
register(_provisioner("ansible", "AnsibleConfig", "AnsibleProvisioner", late_keys=frozenset({"command"}),
                      plugin="ansible"))
register(_provisioner("ansible-local", "AnsibleLocalConfig", "AnsibleLocalProvisioner", plugin="ansible"))

# post-processors
register(_post_processor("manifest", "ManifestConfig", "ManifestPostProcessor", late_keys=_OUTPUT))
register(_post_processor("checksum", "ChecksumConfig", "ChecksumPostProcessor", late_keys=_OUTPUT))
register(_post_processor("compress", "CompressConfig", "CompressPostProcessor", late_keys=_OUTPUT))
register(_post_processor("shell-local", "ShellLocalPostProcessorConfig", "ShellLocalPostProcessor",
                         late_keys=_EXEC))
register(PluginSpec("post-processor", "amazon-import",
                    "amibake.plugins.amazon.amazon_import.config:AmazonImportConfig",
                    "amibake.plugins.amazon.amazon_import.postprocessor:AmazonImportPostProcessor",
                    plugin=amz.PLUGIN, late_keys=frozenset({"s3_key_name"})))
register(_post_processor("artifice", "ArtificeConfig", "ArtificePostProcessor"))
register(_post_processor("amibake-ssm-parameter", "SsmParameterConfig", "SsmParameterPostProcessor"))
register(_post_processor("amibake-launch-template", "LaunchTemplateConfig", "LaunchTemplatePostProcessor"))

# communicators (the `communicator` option of a builder; their options are in CommunicatorConfig)
_COMM = "amibake.config.communicator:CommunicatorConfig"
register(PluginSpec("communicator", "ssh", _COMM, "amibake.communicator.ssh:connect"))
register(PluginSpec("communicator", "none", _COMM, "amibake.communicator.none:NoneCommunicator"))
register(PluginSpec("communicator", "winrm", _COMM, "amibake.communicator.winrm:open_for_build"))
_DOCKER = "it connects to a container that only a docker builder starts, and amibake has none"
register(PluginSpec("communicator", "docker", _COMM, summary=_DOCKER))
register(PluginSpec("communicator", "dockerWindowsContainer", _COMM, summary=_DOCKER))

# data sources (executed by amibake.datasources.runner; null by the HCL loader itself)
register(PluginSpec("datasource", "amazon-ami", f"{_AMZ_DS_CONFIG}:AmiDatasourceConfig",
                    f"{_AMZ_DS}:execute_ami", outputs=amz.AMI_OUTPUTS, plugin=amz.PLUGIN,
                    upgrade_keys=amz.ACCESS_KEYS))
register(PluginSpec("datasource", "amazon-parameterstore", f"{_AMZ_DS_CONFIG}:ParameterStoreConfig",
                    f"{_AMZ_DS}:execute_parameterstore", outputs=amz.PARAMETERSTORE_OUTPUTS,
                    plugin=amz.PLUGIN))
register(PluginSpec("datasource", "amazon-secretsmanager", f"{_AMZ_DS_CONFIG}:SecretsManagerConfig",
                    f"{_AMZ_DS}:execute_secretsmanager", outputs=amz.SECRETSMANAGER_OUTPUTS,
                    plugin=amz.PLUGIN))
# Packer's datasource/http: ``request_headers`` holds the response headers (Packer's naming)
register(PluginSpec("datasource", "http", f"{_DS}.http_config:HttpConfig", f"{_DS}.runner:execute_http",
                    outputs=("url", "body", "request_headers")))
register(PluginSpec("datasource", "null", "", f"{_DS}.runner:null_output", outputs=("output",), local=True))
