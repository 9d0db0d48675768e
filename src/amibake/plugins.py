"""Every plugin amibake knows, under its Packer type name. One line each; see :mod:`amibake.registry`."""

from amibake.builders.amazon import facts as amz
from amibake.registry import PluginSpec, register

_AMZ = "amibake.builders.amazon.config"
_PROV = "amibake.provisioners.config"
_PP = "amibake.postprocessors.config"
_DS = "amibake.datasources"


def _amazon(type_name: str, config: str, impl: str = "", *, generated: tuple[str, ...] = amz.GENERATED,
            reuse: str = "") -> PluginSpec:
    """An amazon builder: the plugin's late keys, build data, template functions and single blocks."""
    return PluginSpec("builder", type_name, config, impl, reuse=reuse, late_keys=amz.LATE_FIELDS,
                      build_data_keys=generated, template_funcs=amz.TEMPLATE_FUNCS,
                      renamed_funcs=amz.RENAMED_FUNCS, single_blocks=amz.SINGLE_BLOCKS, plugin=amz.PLUGIN,
                      hcl2_block_keys=amz.HCL2_BLOCK_KEYS)


_EXEC = frozenset({"execute_command"})
_OUTPUT = frozenset({"output"})

# builders
register(_amazon("amazon-ebs", f"{_AMZ}:EbsConfig", "amibake.builders.amazon.ebs:EbsBuilder",
                 reuse="amibake.builders.amazon.reuse:AmiReuse"))
register(_amazon("amazon-ebssurrogate", f"{_AMZ}_surrogate:EbsSurrogateConfig"))
register(_amazon("amazon-ebsvolume", f"{_AMZ}_ebsvolume:EbsVolumeConfig"))
register(_amazon("amazon-chroot", f"{_AMZ}_chroot:ChrootConfig", generated=amz.CHROOT_GENERATED))
register(_amazon("amazon-instance", f"{_AMZ}_instance:InstanceConfig"))
register(PluginSpec("builder", "null", "amibake.builders.null.config:NullConfig",
                    "amibake.builders.null.builder:NullBuilder"))

# provisioners
register(PluginSpec("provisioner", "shell", f"{_PROV}:ShellConfig",
                    "amibake.provisioners.shell:ShellProvisioner", late_keys=_EXEC))
register(PluginSpec("provisioner", "file", f"{_PROV}:FileConfig",
                    "amibake.provisioners.file:FileProvisioner"))
register(PluginSpec("provisioner", "shell-local", f"{_PROV}:ShellLocalConfig",
                    "amibake.provisioners.shell_local:ShellLocalProvisioner", late_keys=_EXEC))
register(PluginSpec("provisioner", "breakpoint", f"{_PROV}:BreakpointConfig",
                    "amibake.provisioners.breakpoint:BreakpointProvisioner"))
register(PluginSpec("provisioner", "powershell", f"{_PROV}:PowershellConfig",
                    late_keys=frozenset({"execute_command", "elevated_execute_command"})))
register(PluginSpec("provisioner", "windows-restart", f"{_PROV}:WindowsRestartConfig"))
register(PluginSpec("provisioner", "windows-shell", f"{_PROV}:WindowsShellConfig", late_keys=_EXEC))
register(PluginSpec("provisioner", "ansible", f"{_PROV}:AnsibleConfig", late_keys=frozenset({"command"})))
register(PluginSpec("provisioner", "ansible-local", f"{_PROV}:AnsibleLocalConfig"))

# post-processors
register(PluginSpec("post-processor", "manifest", f"{_PP}:ManifestConfig",
                    "amibake.postprocessors.manifest:ManifestPostProcessor", late_keys=_OUTPUT))
register(PluginSpec("post-processor", "checksum", f"{_PP}:ChecksumConfig",
                    "amibake.postprocessors.checksum:ChecksumPostProcessor", late_keys=_OUTPUT))
register(PluginSpec("post-processor", "compress", f"{_PP}:CompressConfig",
                    "amibake.postprocessors.compress:CompressPostProcessor", late_keys=_OUTPUT))
register(PluginSpec("post-processor", "shell-local", f"{_PP}:ShellLocalPostProcessorConfig",
                    "amibake.postprocessors.shell_local:ShellLocalPostProcessor", late_keys=_EXEC))
register(PluginSpec("post-processor", "amazon-import", f"{_PP}:AmazonImportConfig", plugin=amz.PLUGIN))
register(PluginSpec("post-processor", "artifice", f"{_PP}:ArtificeConfig",
                    "amibake.postprocessors.artifice:ArtificePostProcessor"))

# data sources (executed by amibake.datasources.runner; null by the HCL loader itself)
register(PluginSpec("datasource", "amazon-ami", f"{_DS}.configs:AmiDatasourceConfig",
                    f"{_DS}.runner:execute_ami", outputs=amz.AMI_OUTPUTS, plugin=amz.PLUGIN,
                    upgrade_keys=amz.ACCESS_KEYS))
register(PluginSpec("datasource", "amazon-parameterstore", f"{_DS}.configs:ParameterStoreConfig",
                    f"{_DS}.runner:execute_parameterstore", outputs=amz.PARAMETERSTORE_OUTPUTS,
                    plugin=amz.PLUGIN))
register(PluginSpec("datasource", "amazon-secretsmanager", f"{_DS}.configs:SecretsManagerConfig",
                    f"{_DS}.runner:execute_secretsmanager", outputs=amz.SECRETSMANAGER_OUTPUTS,
                    plugin=amz.PLUGIN))
# Packer's datasource/http: ``request_headers`` holds the response headers (Packer's naming)
register(PluginSpec("datasource", "http", f"{_DS}.configs:HttpConfig", f"{_DS}.runner:execute_http",
                    outputs=("url", "body", "request_headers")))
register(PluginSpec("datasource", "null", "", f"{_DS}.runner:null_output", outputs=("output",), local=True))
