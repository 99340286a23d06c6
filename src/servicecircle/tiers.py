"""Tiers: named walking-distance targets for a set of facility kinds, and their presets.

Minutes are converted to metres in exactly one place, :func:`minutes_to_m`; every output
states the metres used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

from ._errors import InputError

log = logging.getLogger(__name__)

KINDS = ("centre", "station", "worker_station")
"""Facility kinds: a party-mass service centre (党群服务中心), a service station (站点/驿站),
or a station for delivery riders and couriers (小哥驿站, 新就业群体)."""

DEFAULT_SPEED_M_PER_MIN = 60.0
"""Walking speed for tiers given in minutes: 60 m/min (3.6 km/h), so 5 minutes = 300 m as in
GB 50180-2018 and 15 minutes = 900 m, inside the standard's 800–1000 m band."""

DEFAULT_GOAL = 0.85
"""Default coverage goal: 85 % of residents (the national 2025 target)."""


def minutes_to_m(minutes: float, speed_m_per_min: float = DEFAULT_SPEED_M_PER_MIN) -> float:
    """Walking distance in metres for ``minutes`` at ``speed_m_per_min`` (the one conversion)."""
    if minutes <= 0 or speed_m_per_min <= 0:
        raise InputError(
            f"minutes and walking speed must be positive; got {minutes} min at "
            f"{speed_m_per_min} m/min"
        )
    metres = float(minutes) * float(speed_m_per_min)
    log.debug("tier distance: %g min × %g m/min = %g m", minutes, speed_m_per_min, metres)
    return metres


@dataclass(frozen=True)
class Tier:
    """A named target: facilities of ``kinds`` within ``target_m`` metres on foot.

    Attributes
    ----------
    name
        Used in column names (``<name>_walk_m``); letters, digits and ``_`` only.
    target_m
        Walking distance in metres.
    kinds
        Facility kinds that serve this tier (centres also serve station tiers by default).
    goal
        Share of residents that should be covered (0–1], for pass/fail.
    minutes
        The minutes the tier was given in, if any (``target_m`` is what is used).
    label, label_en
        Display names for maps, reports and Excel (CSV and JSON keep ``name``); the Chinese
        one is also used in English when no English one is given.
    segment
        Who the tier is for by default: ``residents`` (the population), or a demand segment
        such as ``workers`` (see :mod:`servicecircle.segments`).
    """

    name: str
    target_m: float
    kinds: tuple[str, ...]
    goal: float = DEFAULT_GOAL
    minutes: float | None = None
    label: str | None = None
    label_en: str | None = None
    segment: str = "residents"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.name):
            raise InputError(
                f"tier name {self.name!r} must start with a letter and use only letters, digits "
                "and '_' (it becomes a column name)"
            )
        if not (self.target_m > 0) or self.target_m == float("inf"):
            raise InputError(
                f"tier {self.name}: distance must be a positive number of metres; got "
                f"{self.target_m}"
            )
        if not self.kinds:
            raise InputError(
                f"tier {self.name}: give at least one facility kind ({', '.join(KINDS)})"
            )
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise InputError(
                f"tier {self.name}: unknown facility kind {bad[0]!r}; use {' or '.join(KINDS)}"
            )
        if not (0 < self.goal <= 1):
            raise InputError(f"tier {self.name}: goal must be a share in (0, 1]; got {self.goal}")

    @classmethod
    def from_minutes(
        cls,
        name: str,
        minutes: float,
        kinds: tuple[str, ...],
        *,
        speed_m_per_min: float = DEFAULT_SPEED_M_PER_MIN,
        goal: float = DEFAULT_GOAL,
    ) -> Tier:
        """A tier given as minutes at a walking speed."""
        return cls(name, minutes_to_m(minutes, speed_m_per_min), tuple(kinds), goal, minutes)

    def with_goal(self, goal: float) -> Tier:
        """The same tier with another goal."""
        return replace(self, goal=goal)

    def with_label(self, label: str) -> Tier:
        """The same tier with a display name of the user's (any language)."""
        return replace(self, label=label, label_en=label)

    @property
    def walk_minutes(self) -> float:
        """The tier's walking time at the adult pace: the minutes it was given in, else its
        metres at :data:`DEFAULT_SPEED_M_PER_MIN` (300 m → 5 minutes, GB 50180's pace)."""
        return self.minutes if self.minutes is not None else self.target_m / DEFAULT_SPEED_M_PER_MIN

    def metres_at(self, speed_m_per_min: float) -> float:
        """The distance walked in the tier's minutes at another pace (5 minutes at 48 m/min,
        an older resident's 0.8 m/s, is 240 m): the one place segments turn minutes into
        metres, through :func:`minutes_to_m`."""
        if speed_m_per_min == DEFAULT_SPEED_M_PER_MIN:
            return self.target_m
        return minutes_to_m(self.walk_minutes, speed_m_per_min)

    def display(self, lang: str = "zh") -> str:
        """The tier's display name in ``lang`` (its id when it has none)."""
        if lang == "en":
            return self.label_en or self.label or self.name
        return self.label or self.name


def default_kinds(name: str) -> tuple[str, ...]:
    """Kinds for a tier given without them: ``centre…`` names → centres; else stations and
    centres (a centre also serves its neighbourhood)."""
    return ("centre",) if name.lower().startswith("centre") else ("station", "centre")


PRESETS: dict[str, tuple[Tier, ...]] = {
    # The foundation's defaults (GB 50180-2018 table 3.0.4).
    "default": (
        Tier(
            "centre_15min",
            1000.0,
            ("centre",),
            label="15分钟党群服务圈",
            label_en="15-minute centre circle",
        ),
        Tier(
            "station_5min",
            300.0,
            ("station", "centre"),
            label="5分钟站点服务圈",
            label_en="5-minute station circle",
        ),
    ),
    # All walking-distance circles of GB 50180-2018, with the strict 800 m 15-minute variant.
    "gb50180": (
        Tier(
            "centre_15min", 1000.0, ("centre",), label="15分钟生活圈", label_en="15-minute circle"
        ),
        Tier(
            "centre_15min_strict",
            800.0,
            ("centre",),
            label="15分钟生活圈（800米）",
            label_en="15-minute circle (800 m)",
        ),
        Tier(
            "station_10min",
            500.0,
            ("station", "centre"),
            label="10分钟生活圈",
            label_en="10-minute circle",
        ),
        Tier(
            "station_5min",
            300.0,
            ("station", "centre"),
            label="5分钟生活圈",
            label_en="5-minute circle",
        ),
    ),
}
PRESETS["workers"] = (
    Tier(
        "worker_station",
        300.0,
        ("worker_station", "station"),
        label="5分钟小哥驿站圈",
        label_en="5-minute worker station circle",
        segment="workers",
    ),
)
DEFAULT_TIERS = PRESETS["default"]


def preset(name: str) -> tuple[Tier, ...]:
    """The tiers of a named preset (see :data:`PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(
            f"unknown preset {name!r}; use one of {', '.join(sorted(PRESETS))}"
        ) from None


_TIER_RE = re.compile(
    r"^(?P<name>[^=]+)=(?P<value>[0-9.eE+-]+)\s*(?P<unit>m|min)?(?::(?P<kinds>[^:]+))?$"
)

#: Words accepted for a facility kind (in facility files and ``--tier``), mapped to the kind.
KIND_WORDS = {
    "centre": "centre",
    "center": "centre",
    "中心": "centre",
    "党群服务中心": "centre",
    "station": "station",
    "站点": "station",
    "驿站": "station",
    "服务站": "station",
    "worker_station": "worker_station",
    "小哥驿站": "worker_station",
    "小哥加油站": "worker_station",
    "户外劳动者驿站": "worker_station",
    "骑手驿站": "worker_station",
}


#: Names of facility types as planners write them: a qualifier right before an ending, so that
#: 社区党群服务中心 is a centre, 红色驿站 or 党群服务站 a station, 暖新驿站 or 快递小哥之家 a worker
#: station, while 社区卫生服务中心, 物业服务中心, 菜鸟驿站 or 警务工作站 are none of them.
_WORKER_WORDS = re.compile(
    r"(小哥|骑手|户外劳动者|快递员|外卖员|新就业群体|新就业|暖新|暖蜂|环卫工人|劳动者)"
    r"(驿站|服务站|服务站点|站点|之家|加油站|港湾)$"
)
#: Names of other services that also say 驿站, 服务站 or 服务中心 (parcel points, clinics,
#: police posts…): never a centre or station by their name, in facility files and OSM alike.
NOT_OURS = "菜鸟|快递驿站|卫生|医疗|医院|诊所|警务|派出所|邮政|物业|汽车|家政|药店|银行|加油"
_NOT_OURS = re.compile(NOT_OURS)
_CENTRE_WORDS = re.compile(r"(党群服务|党群|党建服务|社区服务|邻里|便民服务)中心$")
_STATION_WORDS = re.compile(
    r"(红色|党群|党员|党建|社区|便民|邻里|新时代文明实践|党群服务|社区服务|便民服务)"
    r"(驿站|服务站|工作站|站点|之家|服务点)$"
)


def kind_of(word: str) -> str | None:
    """The facility kind a word names (``中心`` → ``centre``, ``红色驿站`` → ``station``), or
    ``None``: the words of :data:`KIND_WORDS`, or a name with a qualifier before its ending.

    >>> [kind_of(w) for w in ("Centre", "社区党群服务中心", "红色驿站", "暖新驿站", "菜鸟驿站")]
    ['centre', 'centre', 'station', 'worker_station', None]
    """
    word = word.strip().lower()
    if word in KIND_WORDS:
        return KIND_WORDS[word]
    if _WORKER_WORDS.search(word):
        return "worker_station"
    if _NOT_OURS.search(word):
        return None
    for pattern, kind in ((_CENTRE_WORDS, "centre"), (_STATION_WORDS, "station")):
        if pattern.search(word):
            return kind
    return None


def parse_tier(
    text: str, *, speed_m_per_min: float = DEFAULT_SPEED_M_PER_MIN, goal: float = DEFAULT_GOAL
) -> Tier:
    """Parse ``NAME=METRES[:KIND,KIND]`` or ``NAME=<N>min[:KIND,KIND]``.

    Examples
    --------
    >>> parse_tier("station_5min=300:station,centre").target_m
    300.0
    >>> parse_tier("centre_15min=15min").target_m
    900.0
    """
    match = _TIER_RE.match(text.strip())
    if not match:
        raise InputError(
            f"tier {text!r} is not NAME=METRES[:KIND,KIND] (e.g. station_5min=300:station,centre "
            "or centre_15min=15min:centre)"
        )
    name = match["name"].strip()
    try:
        value = float(match["value"])
    except ValueError:
        raise InputError(f"tier {text!r}: {match['value']!r} is not a number") from None
    words = [k for k in re.split(r"[,，、]", match["kinds"] or "") if k.strip()]
    kinds = tuple(kind_of(k) or k.strip() for k in words) or default_kinds(name)
    if match["unit"] == "min":
        if value <= 0:
            raise InputError(f"tier {name}: minutes must be positive; got {value}")
        return Tier.from_minutes(name, value, kinds, speed_m_per_min=speed_m_per_min, goal=goal)
    return Tier(name, value, kinds, goal)


def check_unique(tiers: tuple[Tier, ...] | list[Tier]) -> tuple[Tier, ...]:
    """Reject empty or duplicate-named tier lists."""
    tiers = tuple(tiers)
    if not tiers:
        raise InputError("no tiers given; use --tier NAME=METRES or a preset")
    names = [t.name for t in tiers]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InputError(f"tier {sorted(dup)[0]!r} is given twice; give each tier one name")
    return tiers


def tier_by_name(text: str, *, goal: float = DEFAULT_GOAL) -> Tier:
    """A tier from a preset name (``station_5min``) or ``NAME=METRES[:KIND,KIND]``."""
    if "=" in text:
        return parse_tier(text, goal=goal)
    for tiers in PRESETS.values():
        for t in tiers:
            if t.name == text:
                return t.with_goal(goal)
    names = sorted({t.name for tiers in PRESETS.values() for t in tiers})
    raise InputError(
        f"unknown tier {text!r}; use one of {', '.join(names)} or NAME=METRES[:KIND,KIND]"
    )


#: How each facility kind is named on pages and in reports, per language.
KIND_LABELS = {
    "en": {
        "centre": "centre (party-mass service centre)",
        "station": "station",
        "worker_station": "worker station (delivery riders, couriers)",
    },
    "zh": {"centre": "党群服务中心", "station": "服务站点", "worker_station": "小哥驿站"},
}
