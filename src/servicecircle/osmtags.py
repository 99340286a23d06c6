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


#: Columns whose text counts as a feature's name for name patterns, in order of preference.
NAME_COLUMNS = ("name", "name:zh", "official_name", "alt_name", "short_name")


def name_matches(
    frame: pd.DataFrame,
    patterns: list[str] | tuple[str, ...],
    *,
    columns: tuple[str, ...] = NAME_COLUMNS,
) -> tuple[np.ndarray, np.ndarray]:
    """Which rows have a name that matches any of ``patterns``, and the first pattern each
    matched, as rule text (``name~幼儿园``).

    Each pattern is a regular expression searched in every name column of ``columns`` that
    ``frame`` has (``name``, ``name:zh``, ``official_name``, …); missing names never match.
    """
    hit = np.zeros(len(frame), dtype=bool)
    why = np.full(len(frame), "", dtype=object)
    texts: list[tuple[np.ndarray, list[str]]] = []
    for col in columns:
        if col in frame.columns:
            values = frame[col].astype("string")
            rows = np.flatnonzero(values.notna().to_numpy())
            texts.append((rows, [str(v) for v in values.to_numpy()[rows]]))
    for pattern in patterns:
        search = re.compile(pattern).search
        m = np.zeros(len(frame), dtype=bool)
        for rows, text in texts:
            found = np.fromiter((search(t) is not None for t in text), dtype=bool, count=len(text))
            m[rows[found]] = True
        m &= ~hit
        why[m] = rule_text({"name": f"~{pattern}"})
        hit |= m
    return hit, why
