"""Hash and id functions: ``md5`` and the SHA family, ``bcrypt``, ``uuidv4``, ``uuidv5``."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    Func,
    _int,
    _s,
)


def _hash(name: str) -> Func:
    def f(s: Any) -> str:
        return hashlib.new(name, _s(s).encode()).hexdigest()

    f.__name__ = name
    return f


def bcrypt_(s: Any, *cost: Any) -> str:
    try:
        import bcrypt
    except ImportError:
        raise FunctionError("bcrypt() needs the Python 'bcrypt' package, which is not installed") from None
    from amibake.template import fixed

    rounds = _int(cost[0], "cost") if cost else 10
    salt = bcrypt.gensalt(rounds, prefix=b"2a")
    if fixed.active():  # the content fingerprint: a fixed salt
        salt = f"$2a${rounds:02d}${fixed.FIXED_BCRYPT_SALT}".encode()
    return str(bcrypt.hashpw(_s(s).encode(), salt).decode())


def uuidv4() -> str:
    from amibake.template import fixed

    return fixed.FIXED_UUID if fixed.active() else str(uuid.uuid4())


def uuidv5(namespace: Any, name: Any) -> str:
    ns = _s(namespace)
    known = {
        "dns": uuid.NAMESPACE_DNS,
        "url": uuid.NAMESPACE_URL,
        "oid": uuid.NAMESPACE_OID,
        "x500": uuid.NAMESPACE_X500,
    }
    try:
        nsu = known[ns] if ns in known else uuid.UUID(ns)
    except ValueError:
        raise FunctionError(f"uuidv5() doesn't support namespace {ns!r}") from None
    return str(uuid.uuid5(nsu, _s(name)))
