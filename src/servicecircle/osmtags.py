"""OSM tag rules: which features a preset picks, and why.

A rule is a dict of tag → wanted value: ``True`` (any value), a string (that value), a list
(any of them), or a string starting with ``~`` (a regular expression searched in the value).
A rule matches a feature when every tag in it matches. Facility, candidate and life-circle
presets are written in this form.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

Rule = dict[str, Any]


def rule_matches(frame: pd.DataFrame, rule: Rule) -> np.ndarray:
    """Boolean mask of the rows of ``frame`` (OSM tags as columns) that match ``rule``."""
    hit = np.ones(len(frame), dtype=bool)
    for key, want in rule.items():
        if key not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        col = frame[key].astype("string")
        if want is True:
            hit &= col.notna().to_numpy()
        elif isinstance(want, str) and want.startswith("~"):
            hit &= col.str.contains(re.compile(want[1:]), na=False).to_numpy(dtype=bool)
        else:
            values = [want] if isinstance(want, str) else [str(v) for v in want]
            hit &= col.isin(values).fillna(False).to_numpy(dtype=bool)
    return hit


def rule_text(rule: Rule) -> str:
    """A rule as text, e.g. ``amenity=library|post_office & name~驿站``."""
    parts = []
    for key, want in rule.items():
        if want is True:
            parts.append(f"{key}=*")
        elif isinstance(want, str):
            parts.append(f"{key}{want}" if want.startswith("~") else f"{key}={want}")
        else:
            parts.append(f"{key}={'|'.join(str(w) for w in want)}")
    return " & ".join(parts)


def first_match(frame: pd.DataFrame, rules: list[Rule]) -> tuple[np.ndarray, np.ndarray]:
    """Which rows match any of ``rules``, and the text of the first rule each matched."""
    hit = np.zeros(len(frame), dtype=bool)
    why = np.full(len(frame), "", dtype=object)
    for rule in rules:
        m = rule_matches(frame, rule) & ~hit
        why[m] = rule_text(rule)
        hit |= m
    return hit, why
