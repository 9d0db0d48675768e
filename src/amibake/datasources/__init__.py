"""Packer's data sources for HCL2 templates: ``amazon-ami``, ``amazon-parameterstore``,
``amazon-secretsmanager`` (the amazon plugin's, in :mod:`amibake.plugins.amazon.datasources`) and
``http`` (``null`` is evaluated by the HCL loader).

:class:`DatasourceRunner` is the ``datasource_resolver`` given to
:func:`amibake.template.hcl.load_hcl`. Importing this package is cheap: boto3 and urllib are
imported only when a data source is executed.
"""

from __future__ import annotations

from amibake.datasources.errors import DatasourceError
from amibake.datasources.runner import DatasourceConfigError, DatasourceRunner

__all__ = ["DatasourceConfigError", "DatasourceError", "DatasourceRunner"]
