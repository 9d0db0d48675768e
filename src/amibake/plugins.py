"""Every plugin amibake knows, under its Packer type name. One line each; see :mod:`amibake.registry`."""

from amibake.registry import PluginSpec, register

_AMZ = "amibake.builders.amazon.config"
_PROV = "amibake.provisioners.config"
_PP = "amibake.postprocessors.config"

# builders
register(PluginSpec("builder", "amazon-ebs", f"{_AMZ}:EbsConfig", "amibake.builders.amazon.ebs:EbsBuilder",
                    reuse="amibake.builders.amazon.reuse:AmiReuse"))
register(PluginSpec("builder", "amazon-ebssurrogate", f"{_AMZ}_surrogate:EbsSurrogateConfig"))
register(PluginSpec("builder", "amazon-ebsvolume", f"{_AMZ}_ebsvolume:EbsVolumeConfig"))
register(PluginSpec("builder", "amazon-chroot", f"{_AMZ}_chroot:ChrootConfig"))
register(PluginSpec("builder", "amazon-instance", f"{_AMZ}_instance:InstanceConfig"))
register(PluginSpec("builder", "null", "amibake.builders.null.config:NullConfig",
                    "amibake.builders.null.builder:NullBuilder"))

# provisioners
register(PluginSpec("provisioner", "shell", f"{_PROV}:ShellConfig",
                    "amibake.provisioners.shell:ShellProvisioner"))
register(PluginSpec("provisioner", "file", f"{_PROV}:FileConfig",
                    "amibake.provisioners.file:FileProvisioner"))
register(PluginSpec("provisioner", "shell-local", f"{_PROV}:ShellLocalConfig",
                    "amibake.provisioners.shell_local:ShellLocalProvisioner"))
register(PluginSpec("provisioner", "breakpoint", f"{_PROV}:BreakpointConfig",
                    "amibake.provisioners.breakpoint:BreakpointProvisioner"))
register(PluginSpec("provisioner", "powershell", f"{_PROV}:PowershellConfig"))
register(PluginSpec("provisioner", "windows-restart", f"{_PROV}:WindowsRestartConfig"))
register(PluginSpec("provisioner", "windows-shell", f"{_PROV}:WindowsShellConfig"))
register(PluginSpec("provisioner", "ansible", f"{_PROV}:AnsibleConfig"))
register(PluginSpec("provisioner", "ansible-local", f"{_PROV}:AnsibleLocalConfig"))

# post-processors
register(PluginSpec("post-processor", "manifest", f"{_PP}:ManifestConfig",
                    "amibake.postprocessors.manifest:ManifestPostProcessor"))
register(PluginSpec("post-processor", "checksum", f"{_PP}:ChecksumConfig",
                    "amibake.postprocessors.checksum:ChecksumPostProcessor"))
register(PluginSpec("post-processor", "compress", f"{_PP}:CompressConfig",
                    "amibake.postprocessors.compress:CompressPostProcessor"))
register(PluginSpec("post-processor", "shell-local", f"{_PP}:ShellLocalPostProcessorConfig",
                    "amibake.postprocessors.shell_local:ShellLocalPostProcessor"))
register(PluginSpec("post-processor", "amazon-import", f"{_PP}:AmazonImportConfig"))
register(PluginSpec("post-processor", "artifice", f"{_PP}:ArtificeConfig",
                    "amibake.postprocessors.artifice:ArtificePostProcessor"))
