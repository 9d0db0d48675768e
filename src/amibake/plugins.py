"""Every plugin amibake knows, under its Packer type name. One line each; see :mod:`amibake.registry`."""

from amibake.registry import PluginSpec, register

# builders
# register(PluginSpec("builder", "amazon-ebs", "amibake.builders.amazon.config:EbsConfig",
#                     "amibake.builders.amazon.ebs:EbsBuilder"))
