"""Number functions with more than a line of their own: ``parseint`` and ``log``."""

from __future__ import annotations

import math
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    _int,
    _n,
    _s,
)
from amibake.template.hcl.values import (
    normalize_number,
)


def parseint(s: Any, base: Any) -> int:
    b = _int(base, "base")
    if not 2 <= b <= 62:
        raise FunctionError("base must be a whole number between 2 and 62 inclusive")
    try:
        return int(_s(s), b)
    except ValueError:
        raise FunctionError(f"cannot parse {s!r} as a base {b} integer") from None


def _log(x: Any, base: Any) -> Any:
    return normalize_number(math.log(_n(x)) / math.log(_n(base)))
