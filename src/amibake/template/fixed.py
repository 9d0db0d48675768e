"""Fixed placeholders for the functions whose value changes from run to run.

The content fingerprint (:mod:`amibake.fingerprint`) renders a template a second time with the
run's clock fixed at the Unix epoch and, inside :func:`placeholders`, with ``{{uuid}}``, HCL2
``uuidv4()`` and ``bcrypt()`` answering fixed values: a build whose inputs did not change renders
to the same options whatever the time and the randomness. Outside the context manager nothing
changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

#: the clock time functions see in fingerprint rendering
FIXED_TIME = datetime(1970, 1, 1, tzinfo=UTC)
#: what ``{{uuid}}`` and ``uuidv4()`` render to in fingerprint rendering
FIXED_UUID = "00000000-0000-0000-0000-000000000000"
#: the bcrypt salt of fingerprint rendering (22 base64 characters of zero bytes)
FIXED_BCRYPT_SALT = "." * 22

_ACTIVE: ContextVar[bool] = ContextVar("amibake_fixed_placeholders", default=False)


def active() -> bool:
    """True while rendering for the fingerprint."""
    return _ACTIVE.get()


@contextmanager
def placeholders() -> Iterator[None]:
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
