"""The one AWS session layer under every AWS user of amibake (builders, data sources, ``amibake
cleanup``, the ``aws_secretsmanager`` template function).

* :mod:`amibake.aws.access`: the access settings (credentials, profile, ``assume_role``, MFA,
  endpoints); light, no botocore import, so ``validate`` can compute them;
* :mod:`amibake.aws.session`: the credential chain, ``assume_role`` through STS, endpoints and the
  process's client pool;
* :mod:`amibake.aws.retry`: the retry policy (which failures are retried, and how long to wait);
* :mod:`amibake.aws.errors`: botocore's exceptions mapped to AWS's error code and message.

This package's ``__init__`` imports nothing: botocore is imported by the modules that need it.
"""
