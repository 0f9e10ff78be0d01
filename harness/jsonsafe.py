"""JSON that every parser accepts: nan and infinities become null, numpy values plain Python.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which strict parsers (and
``jq``, JavaScript, most other languages) reject; an undefined figure (a Kendall tau of
constant scores, a test accuracy without a reference table) is written as ``null`` instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` with nan/inf replaced by None, numpy scalars and arrays by Python ones, tuples by lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of ``jsonable(value)``; refuses (ValueError) anything that would still not be valid JSON."""
    return json.dumps(jsonable(value), allow_nan=False, **options)
