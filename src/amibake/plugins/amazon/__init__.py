"""The amazon plugin, one folder: its access, run, AMI and block-device configs (``config*.py``), the
EC2 gateway (``ec2*.py``, seen by the steps through ``ec2api.py``), the amazon-ebs steps and their
state, the artifact, image reuse, its facts (``facts.py``), its data sources (``datasources.py``,
``datasource_configs.py``, ``datasource_aws.py``) and the ``amazon-import`` post-processor's config
(``amazon_import/``). Registered in :mod:`amibake.plugins`."""
