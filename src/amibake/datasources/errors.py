"""Errors of data source execution."""

from __future__ import annotations

from amibake.errors import AmibakeError


class DatasourceError(AmibakeError):
    """A data source could not be executed (the message is Packer's, when Packer has one)."""
