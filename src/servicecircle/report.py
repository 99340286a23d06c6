"""report.html: the numbers a planner hands in, in one self-contained page."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._write import write_text

if TYPE_CHECKING:
    import pandas as pd

    from .coverage import Coverage

TEXT = {
    "zh": {
        "title": "社区服务圈覆盖报告",
        "tier": "服务圈",
        "target": "步行距离",
        "residents": "居民",
        "covered": "已覆盖",
        "share": "覆盖率",
        "goal": "目标",
        "pass": "达标",
        "yes": "是",
        "no": "否",
        "circle": "直线圆 vs 步行",
        "circle_share": "直线圆覆盖率",
        "walk_share": "步行覆盖率",
        "over": "被直线圆误计为覆盖的居民",
        "cells": "覆盖最差的十个网格",
        "cell": "网格",
        "proposals": "建议新增站点",
        "rank": "排序",
        "gain": "新增覆盖居民",
        "curve": "步行距离与覆盖率",
        "note": "地图数据 © OpenStreetMap contributors (ODbL)",
        "unreachable": "距道路过远、无法接入的居民点",
    },
    "en": {
        "title": "Service-circle coverage report",
        "tier": "tier",
        "target": "walking distance",
        "residents": "residents",
        "covered": "covered",
        "share": "share",
        "goal": "goal",
        "pass": "pass",
        "yes": "yes",
        "no": "no",
        "circle": "Straight-line circle vs walking",
        "circle_share": "circle share",
        "walk_share": "walking share",
        "over": "residents a circle wrongly counts as served",
        "cells": "The ten least-served cells",
        "cell": "cell",
        "proposals": "Proposed sites",
        "rank": "rank",
        "gain": "added covered residents",
        "curve": "Share of residents by walking distance",
        "note": "Map data © OpenStreetMap contributors (ODbL)",
        "unreachable": "demand points farther than the snap limit from any street",
    },
}


def share_curve_png(coverage: Coverage, lang: str = "en") -> bytes:
    """A PNG of the share of residents within each walking distance, one line per tier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = coverage.points
    pop = pts["population"].to_numpy(dtype=float)
    total = pop.sum()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for tier in coverage.tiers:
        walk = pts[f"{tier.name}_walk_m"].to_numpy(dtype=float)
        top = tier.target_m * coverage.search_factor
        d = np.linspace(0, top, 200)
        order = np.argsort(np.where(np.isnan(walk), np.inf, walk))
        w_sorted = np.where(np.isnan(walk), np.inf, walk)[order]
        cum = np.concatenate([[0.0], np.cumsum(pop[order])])
        share = cum[np.searchsorted(w_sorted, d, side="right")] / total if total else d * 0
        line = ax.plot(d, share * 100, label=f"{tier.name}")[0]
        ax.axvline(tier.target_m, color=line.get_color(), linestyle=":", linewidth=1)
        ax.axhline(tier.goal * 100, color=line.get_color(), linestyle="--", linewidth=0.6)
    ax.set_xlabel("walking distance (m)")
    ax.set_ylabel("residents within (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(v: float | None) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.1%}"


def report_html(
    summary: dict[str, Any],
    coverage: Coverage,
    *,
    cells: pd.DataFrame | None = None,
    siting: dict[str, Any] | None = None,
    proposals: pd.DataFrame | None = None,
    lang: str = "zh",
    title: str | None = None,
) -> str:
    """The report page (self-contained: styles inline, the chart as an embedded PNG)."""
    t = TEXT.get(lang, TEXT["en"])
    parts = [
        f"<h1>{html.escape(title or t['title'])} · {html.escape(str(summary['area']['name']))}</h1>"
    ]
    rows = []
    for name, tier in summary["tiers"].items():
        passed = tier["pass"]
        rows.append(
            [
                name,
                f"{tier['target_m']:.0f} m",
                f"{tier['residents']:,.0f}",
                f"{tier['covered_residents']:,.0f}",
                _pct(tier["share"]),
                f"{tier['goal']:.0%}",
                "–" if passed is None else (t["yes"] if passed else t["no"]),
            ]
        )
    parts.append(
        _table(
            [
                t["tier"],
                t["target"],
                t["residents"],
                t["covered"],
                t["share"],
                t["goal"],
                t["pass"],
            ],
            rows,
        )
    )
    if summary.get("unreachable_demand_points"):
        parts.append(
            f"<p>{t['unreachable']}: {summary['unreachable_demand_points']} "
            f"({summary['unreachable_residents']:,.0f} {t['residents']})</p>"
        )
    cvw = summary.get("circle_vs_walk", {})
    if cvw:
        parts.append(f"<h2>{t['circle']}</h2>")
        parts.append(
            _table(
                [t["tier"], t["circle_share"], t["walk_share"], t["over"]],
                [
                    [
                        k,
                        _pct(v["circle_share"]),
                        _pct(v["walk_share"]),
                        f"{v['overcounted_residents']:,.0f}",
                    ]
                    for k, v in cvw.items()
                ],
            )
        )
    if cells is not None and len(cells) and coverage.tiers:
        parts += _cells_section(cells, coverage, t)
    if proposals is not None and len(proposals):
        parts += _proposals_section(proposals, siting, t)
    png = base64.b64encode(share_curve_png(coverage, lang)).decode("ascii")
    parts.append(f"<h2>{t['curve']}</h2><img alt='{t['curve']}' src='data:image/png;base64,{png}'>")
    parts.append(f"<p class='note'>{t['note']}</p>")
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:24px auto;padding:0 16px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}th{background:#f2f2f2}td:first-child{text-align:left}"
        "h1{font-size:22px}h2{font-size:17px;margin-top:24px}.note{color:#666;font-size:12px}"
        "img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
        f"<title>{html.escape(t['title'])}</title><style>{style}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )


def _cells_section(cells: pd.DataFrame, coverage: Coverage, t: dict[str, str]) -> list[str]:
    """The ten least-served cells of the finest tier."""
    parts: list[str] = []
    first = coverage.tiers[-1].name
    col = f"{first}_share"
    frame = cells[cells["population"] > 0].sort_values([col, "cell_id"]).head(10)
    parts.append(f"<h2>{t['cells']} ({first})</h2>")
    parts.append(
        _table(
            [t["cell"], t["residents"], *[f"{tt.name} {t['share']}" for tt in coverage.tiers]],
            [
                [
                    r["cell_id"],
                    f"{r['population']:,.0f}",
                    *[_pct(r.get(f"{tt.name}_share")) for tt in coverage.tiers],
                ]
                for _, r in frame.iterrows()
            ],
        )
    )
    return parts


def _proposals_section(
    proposals: pd.DataFrame, siting: dict[str, Any] | None, t: dict[str, str]
) -> list[str]:
    """Coverage before → after per level, and the ranked proposals."""
    parts: list[str] = []
    parts.append(f"<h2>{t['proposals']}</h2>")
    if siting is not None:
        levels = siting.get("levels", {"": siting})
        for _key, s in levels.items():
            how = f"{s['model']}, {s['method']}" + (", optimal" if s["optimal"] else "")
            parts.append(
                f"<p>{html.escape(s['tier']['name'])}: {_pct(s['share_before'])} → "
                f"{_pct(s['share_after'])} ({html.escape(how)})</p>"
            )
    parts.append(
        _table(
            [t["rank"], "id", "kind", t["gain"], "lon", "lat"],
            [
                [
                    int(r["rank"]),
                    r["id"],
                    r["kind"],
                    f"{r['added_covered_residents']:,.0f}",
                    f"{r['lon']:.6f}",
                    f"{r['lat']:.6f}",
                ]
                for _, r in proposals.iterrows()
            ],
        )
    )
    return parts


def write_report(path: str | Path, page: str) -> Path:
    """Write the report atomically."""
    return write_text(path, page)
