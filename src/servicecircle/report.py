"""report.html: the numbers a planner hands in, in one self-contained page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._write import write_text
from .tiers import KIND_LABELS

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
        "id": "编号",
        "kind": "类型",
        "lon": "经度",
        "lat": "纬度",
        "optimal": "已证明最优",
        "method": "求解",
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
        "id": "id",
        "kind": "kind",
        "lon": "lon",
        "lat": "lat",
        "optimal": "proven optimal",
        "method": "method",
        "rank": "rank",
        "gain": "added covered residents",
        "curve": "Share of residents by walking distance",
        "note": "Map data © OpenStreetMap contributors (ODbL)",
        "unreachable": "demand points farther than the snap limit from any street",
    },
}


CURVE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def share_curve(coverage: Coverage) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """Per tier: the distances and the share of residents within each (0–1)."""
    pts = coverage.points
    out = []
    for tier in coverage.tiers:
        pop = coverage.weights(tier)
        total = float(pop.sum())
        walk = pts[f"{tier.name}_walk_m"].to_numpy(dtype=float)
        walk = np.where(np.isnan(walk), np.inf, walk)
        order = np.argsort(walk, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(pop[order])])
        d = np.linspace(0, tier.target_m * coverage.search_factor, 200)
        share = cum[np.searchsorted(walk[order], d, side="right")] / total if total else d * 0
        out.append((tier, d, share))
    return out


def share_curve_svg(coverage: Coverage, lang: str = "en") -> str:
    """An SVG chart of the share of residents within each walking distance, one line per tier
    (inline in the page: no image library, no file)."""
    w, h, left, right, top, bottom = 660, 360, 56, 16, 14, 44
    curves = share_curve(coverage)
    top_m = max((float(d[-1]) for _, d, _ in curves), default=1.0) or 1.0
    px = lambda x: left + (w - left - right) * x / top_m  # noqa: E731
    py = lambda y: top + (h - top - bottom) * (1 - y)  # noqa: E731
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' "
             f"viewBox='0 0 {w} {h}' font-family='sans-serif' font-size='11'>"]  # fmt: skip
    for k in range(6):
        y = py(k / 5)
        parts.append(f"<line x1='{left}' x2='{w - right}' y1='{y:.1f}' y2='{y:.1f}' "
                     f"stroke='#ddd'/><text x='{left - 6}' y='{y + 4:.1f}' "
                     f"text-anchor='end'>{k * 20}</text>")  # fmt: skip
    for k in range(6):
        x_m = top_m * k / 5
        parts.append(f"<text x='{px(x_m):.1f}' y='{h - bottom + 16}' text-anchor='middle'>"
                     f"{x_m:,.0f}</text>")  # fmt: skip
    x_label = "步行距离（米）" if lang == "zh" else "walking distance (m)"
    y_label = "可达居民（%）" if lang == "zh" else "residents within (%)"
    parts.append(f"<text x='{(left + w - right) / 2}' y='{h - 8}' text-anchor='middle'>"
                 f"{x_label}</text><text transform='translate(14 {(top + h - bottom) / 2}) "
                 f"rotate(-90)' text-anchor='middle'>{y_label}</text>")  # fmt: skip
    for i, (tier, d, share) in enumerate(curves):
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        line = " ".join(
            f"{px(float(a)):.1f},{py(float(b)):.1f}" for a, b in zip(d, share, strict=True)
        )
        parts.append(f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-width='2'/>")
        x = px(tier.target_m)
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{h - bottom}' "
                     f"stroke='{colour}' stroke-dasharray='2 3'/>")  # fmt: skip
        y = py(tier.goal)
        parts.append(f"<line x1='{left}' x2='{w - right}' y1='{y:.1f}' y2='{y:.1f}' "
                     f"stroke='{colour}' stroke-dasharray='6 3' stroke-width='0.7'/>")  # fmt: skip
        ly = h - bottom - 12 - 16 * (len(curves) - 1 - i)
        parts.append(f"<line x1='{w - right - 170}' x2='{w - right - 150}' y1='{ly}' y2='{ly}' "
                     f"stroke='{colour}' stroke-width='2'/><text x='{w - right - 145}' "
                     f"y='{ly + 4}'>{html.escape(tier.display(lang))}</text>")  # fmt: skip
    parts.append(f"<rect x='{left}' y='{top}' width='{w - left - right}' "
                 f"height='{h - top - bottom}' fill='none' stroke='#888'/></svg>")  # fmt: skip
    return "".join(parts)


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
    label_key = "label_en" if lang == "en" else "label"
    for name, tier in summary["tiers"].items():
        passed = tier["pass"]
        rows.append(
            [
                tier.get(label_key) or name,
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
    parts += _segments_section(summary, lang)
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
                        summary["tiers"].get(k, {}).get(label_key) or k,
                        _pct(v["circle_share"]),
                        _pct(v["walk_share"]),
                        f"{v['overcounted_residents']:,.0f}",
                    ]
                    for k, v in cvw.items()
                ],
            )
        )
    if cells is not None and len(cells) and coverage.tiers:
        parts += _cells_section(cells, coverage, t, lang)
    if proposals is not None and len(proposals):
        parts += _proposals_section(proposals, siting, t, lang)
    parts.append(f"<h2>{t['curve']}</h2><figure role='img' aria-label='{t['curve']}'>"
                 f"{share_curve_svg(coverage, lang)}</figure>")  # fmt: skip
    parts.append(f"<p class='note'>{t['note']}</p>")
    return page(str(t["title"]), parts, lang)


STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ccc;"
    "padding:4px 8px;text-align:right}th{background:#f2f2f2}td:first-child{text-align:left}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:24px}.note{color:#666;font-size:12px}"
    "img{max-width:100%}.matrix td{font-size:12px;min-width:38px}.matrix th{font-size:12px}"
)


def page(title: str, parts: list[str], lang: str) -> str:
    """A self-contained report page from its parts (already escaped HTML)."""
    return (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )


SEGMENT_TEXT = {
    "zh": {
        "title": "分人群覆盖（按各自步速）",
        "segment": "人群",
        "speed": "步速",
        "within": "步行距离",
        "people": "人数",
        "share": "覆盖率",
        "worst": "覆盖最差的人群：{seg}（{tier}，{share}）",
        "source": "人群人数来源",
    },
    "en": {
        "title": "Coverage by segment (each at its own pace)",
        "segment": "segment",
        "speed": "speed",
        "within": "walking distance",
        "people": "people",
        "share": "share",
        "worst": "The segment worst served: {seg} ({tier}, {share})",
        "source": "where the segment counts come from",
    },
}


def _segments_section(summary: dict[str, Any], lang: str) -> list[str]:
    """A table tier × segment and the sentence naming the segment worst served."""
    t = SEGMENT_TEXT.get(lang, SEGMENT_TEXT["en"])
    key = "label_en" if lang == "en" else "label"
    rows, worst = [], None
    for tier in summary.get("tiers", {}).values():
        for s in (tier.get("segments") or {}).values():
            rows.append(
                [tier.get(key) or "", s.get(key) or "", f"{s['speed_m_per_s']:g} m/s",
                 f"{s['target_m']:.0f} m", f"{s['people']:,.0f}", _pct(s["share"])]
            )  # fmt: skip
            if s["share"] is not None and (worst is None or s["share"] < worst[0]):
                worst = (s["share"], s.get(key) or "", tier.get(key) or "")
    if not rows:
        return []
    parts = [f"<h2>{html.escape(t['title'])}</h2>"]
    parts.append(
        _table([summary_label(lang), t["segment"], t["speed"], t["within"], t["people"],
                t["share"]], rows)
    )  # fmt: skip
    if worst is not None:
        text = t["worst"].format(seg=worst[1], tier=worst[2], share=_pct(worst[0]))
        parts.append(f"<p><b>{html.escape(text)}</b></p>")
    sources = [
        f"{name}: {about.get('source', '')}" for name, about in summary.get("segments", {}).items()
    ]
    if sources:
        parts.append(
            f"<p class='note'>{html.escape(t['source'])}: {html.escape('; '.join(sources))}</p>"
        )
    return parts


def summary_label(lang: str) -> str:
    """The word for a tier in the report's language."""
    return TEXT.get(lang, TEXT["en"])["tier"]


def _cells_section(
    cells: pd.DataFrame, coverage: Coverage, t: dict[str, str], lang: str
) -> list[str]:
    """The ten least-served cells of the finest tier."""
    parts: list[str] = []
    first = coverage.tiers[-1].name
    col = f"{first}_share"
    frame = cells[cells["population"] > 0].sort_values([col, "cell_id"]).head(10)
    finest = coverage.tiers[-1].display(lang)
    parts.append(f"<h2>{t['cells']} ({html.escape(finest)})</h2>")
    parts.append(
        _table(
            [
                t["cell"],
                t["residents"],
                *[f"{tt.display(lang)} {t['share']}" for tt in coverage.tiers],
            ],
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
    proposals: pd.DataFrame, siting: dict[str, Any] | None, t: dict[str, str], lang: str
) -> list[str]:
    """Coverage before → after per level, and the ranked proposals."""
    parts: list[str] = []
    parts.append(f"<h2>{t['proposals']}</h2>")
    if siting is not None:
        levels = siting.get("levels", {"": siting})
        for _key, s in levels.items():
            how = f"{s['model']}, {t['method']}: {s['method']}"
            how += f", {t['optimal']}" if s["optimal"] else ""
            tier = s["tier"].get("label") or s["tier"]["name"]
            parts.append(
                f"<p>{html.escape(tier)}: {_pct(s['share_before'])} → "
                f"{_pct(s['share_after'])} ({html.escape(how)})</p>"
            )
    kinds = KIND_LABELS["zh"] if lang == "zh" else {}  # English keeps the plain kind
    parts.append(
        _table(
            [t["rank"], t["id"], t["kind"], t["gain"], t["lon"], t["lat"]],
            [
                [
                    int(r["rank"]),
                    r["id"],
                    kinds.get(str(r["kind"]), r["kind"]),
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


AUDIT_TEXT: dict[str, dict[str, Any]] = {
    "zh": {
        "title": "生活圈体检报告",
        "level": "层级",
        "levels": {"15min": "15分钟生活圈", "10min": "10分钟生活圈", "5min": "5分钟生活圈",
                   "block": "居住街坊"},
        "all_basic": "基础保障型设施全部可达的居民",
        "all_present": "（仅计区内已有的设施类型）",
        "type": "设施类型",
        "radius": "步行距离",
        "kind": "类型",
        "basic": "基础保障型",
        "quality": "品质提升型",
        "pois": "设施数",
        "within": "可达居民",
        "share": "比例",
        "absent": "区内没有的设施类型",
        "matrix": "网格 × 设施类型：可达居民比例（缺项最多的网格在前）",
        "worst": "缺项最多的网格",
        "cell": "网格",
        "residents": "居民",
        "mean_missing": "平均缺项数",
        "lacks": "不足一半居民可达",
        "convention": "（规划惯例，非条文）",
        "note": "地图数据 © OpenStreetMap contributors (ODbL)",
    },
    "en": {
        "title": "Life-circle audit",
        "level": "level",
        "levels": {"15min": "15-minute", "10min": "10-minute", "5min": "5-minute",
                   "block": "residential block"},
        "all_basic": "residents with every basic type within reach",
        "all_present": "(counting only types present in the area)",
        "type": "facility type",
        "radius": "walking distance",
        "kind": "kind",
        "basic": "basic",
        "quality": "quality",
        "pois": "facilities",
        "within": "residents within",
        "share": "share",
        "absent": "types absent from the whole area",
        "matrix": "Cells × facility types: share of residents within reach (worst cells first)",
        "worst": "The worst-served cells",
        "cell": "cell",
        "residents": "residents",
        "mean_missing": "basic types missing (mean)",
        "lacks": "within reach of fewer than half",
        "convention": " (a planning convention, not a clause)",
        "note": "Map data © OpenStreetMap contributors (ODbL)",
    },
}  # fmt: skip


def _share_cell(v: Any) -> str:
    from .maps import share_colour

    try:
        x = float(v)
    except (TypeError, ValueError):
        x = float("nan")
    colour = share_colour(x if np.isfinite(x) else None)
    return f"<td style='background:{colour}'>{_pct(x)}</td>"


def audit_report_html(
    summary: dict[str, Any], std: Any, cells: pd.DataFrame | None = None, *, lang: str = "zh"
) -> str:
    """The audit report: per level the share with every basic type within reach, per type
    the residents within, the types absent, and a matrix cell × type with the worst cells."""
    t = AUDIT_TEXT.get(lang, AUDIT_TEXT["en"])
    area = summary.get("area", {}).get("name", "")
    parts = [f"<h1>{html.escape(t['title'])} · {html.escape(str(area))}</h1>"]
    rows = []
    for level, s in summary.get("levels", {}).items():
        rows.append(
            [t["levels"].get(level, level), _pct(s["share_all_basic"]),
             _pct(s["share_all_basic_present"])]
        )  # fmt: skip
    parts.append(_table([t["level"], t["all_basic"], t["all_present"]], rows))
    name = "name_zh" if lang == "zh" else "name_en"
    rows = []
    for ty in std.types:
        s = summary["types"][ty.id]
        label = getattr(ty, name) + (t["convention"] if ty.convention else "")
        rows.append(
            [label, t["levels"].get(ty.level, ty.level), f"{ty.max_walk_m:.0f} m",
             t[ty.kind], s["pois"], f"{s['residents_within']:,.0f}", _pct(s["share"])]
        )  # fmt: skip
    parts.append(
        _table([t["type"], t["level"], t["radius"], t["kind"], t["pois"], t["within"], t["share"]],
               rows)
    )  # fmt: skip
    absent = [getattr(std.by_id(i), name) for i in summary.get("absent_types", [])]
    parts.append(
        f"<h2>{html.escape(t['absent'])}</h2><p>{html.escape('、'.join(absent) or '–')}</p>"
    )
    if cells is not None and len(cells):
        parts += _audit_matrix(cells, std, t, name)
    parts.append(f"<p class='note'>{t['note']}</p>")
    return page(str(t["title"]), parts, lang)


def _audit_matrix(cells: pd.DataFrame, std: Any, t: dict[str, Any], name: str) -> list[str]:
    basic = list(std.basic_types())
    have = cells[cells["population"] > 0].sort_values(
        ["types_missing_mean", "cell_id"], ascending=[False, True]
    )
    head = "".join(f"<th>{html.escape(getattr(ty, name))}</th>" for ty in basic)
    body = []
    for _, row in have.head(40).iterrows():
        cols = "".join(_share_cell(row[f"{ty.id}_share"]) for ty in basic)
        body.append(
            f"<tr><td>{html.escape(str(row['cell_id']))}</td>"
            f"<td>{row['population']:,.0f}</td><td>{row['types_missing_mean']:.2f}</td>{cols}</tr>"
        )
    parts = [f"<h2>{html.escape(t['matrix'])}</h2>"]
    parts.append(
        f"<table class='matrix'><thead><tr><th>{html.escape(t['cell'])}</th>"
        f"<th>{html.escape(t['residents'])}</th><th>{html.escape(t['mean_missing'])}</th>{head}"
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
    worst = []
    for _, row in have.head(10).iterrows():
        lacks = [getattr(ty, name) for ty in basic if not row[f"{ty.id}_share"] >= 0.5]
        worst.append([row["cell_id"], f"{row['population']:,.0f}",
                      f"{row['types_missing_mean']:.2f}", "、".join(lacks) or "–"])  # fmt: skip
    parts.append(f"<h2>{html.escape(t['worst'])}</h2>")
    parts.append(_table([t["cell"], t["residents"], t["mean_missing"], t["lacks"]], worst))
    return parts
