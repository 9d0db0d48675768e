"""amibake: build Amazon Machine Images from Packer templates."""

__version__ = "0.1.0"

#: The Packer release whose template language and behaviour amibake follows.
#: ``min_packer_version`` in a template is checked against this.
PACKER_COMPAT_VERSION = "1.9.4"
