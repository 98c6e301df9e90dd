"""The profile table: one row per segment in business language, and its Markdown rendering.

``describe_segments`` puts the rules (:mod:`custseg.profile.rules`) and the
sentences (:mod:`custseg.profile.descriptions`) together for every segment of
a :class:`SegmentStatistics`; ``profile_markdown`` renders the seed analysis's table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from custseg.profile.descriptions import description, loyalty_text, purchase_text
from custseg.profile.rules import (
    ARCHETYPES,
    FLAT_SHARE,
    NOISE,
    SIMILAR,
    UNKNOWN,
    archetype,
    is_outlier,
    qualitative_word,
)
from custseg.profile.statistics import CUT_NAMES, SegmentStatistics

_MARKDOWN_HEADER = (
    "| Cluster | Units Purchased | Loyalty Segment | Num Orders | Count |\n|---|---|---|---|---|"
)


def similar_features(stats: SegmentStatistics, features: Sequence[str]) -> set[str]:
    """The features whose median is the same in every segment (noise aside), within FLAT_SHARE
    of the population's q20..q80 range: they do not tell the segments apart."""
    segments = stats.segments[stats.segments["segment"] != NOISE]
    if len(segments) < 2:
        return set()
    flat = set()
    for f in features:
        medians = segments[f"{f}_median"].dropna()
        if medians.empty:
            continue
        pop = stats.population.loc[f]
        spread = float(medians.max() - medians.min())
        if spread <= FLAT_SHARE * float(pop["q80"] - pop["q20"]):
            flat.add(f)
    return flat


def _segment_words(
    medians: dict[str, float], described: Sequence[str], population: pd.DataFrame, flat: set[str]
) -> dict[str, str]:
    """The word of each described feature; "similar" for a feature no segment differs on."""
    words = {}
    for f in described:
        pop = population.loc[f]
        constant = bool(pop["min"] == pop["max"])
        word = qualitative_word(medians[f], [pop[c] for c in CUT_NAMES], constant)
        words[f] = SIMILAR if f in flat and word != UNKNOWN else word
    return words


# Stays whole (61 lines, a third of them docstring): one record per segment, its columns in one
# place.
# whole: most of it is the docstring listing the columns of the table it returns
def describe_segments(
    stats: SegmentStatistics,
    outlier_share: float = 0.01,
    described: Sequence[str] | None = None,
    typical_gap_days: float = math.nan,
) -> pd.DataFrame:
    """One row per segment in business language.

    ``described``: the features that get words (default: every feature of
    ``stats``); the model's clustering features, so a feature it left out
    (zero variance, not available) is never described. ``typical_gap_days``:
    the population's typical gap between orders (see :func:`typical_gap_days`),
    what recency is phrased and lapsing judged against.

    Columns: ``segment, size, share, revenue_share, archetype, archetype_text,
    description, purchase_text, loyalty_text, action, is_outlier`` and, per
    feature ``f`` of ``stats``, ``f_median, f_mean``, and ``f_word`` for the
    described ones. ``purchase_text``, ``loyalty_text`` and ``archetype_text``
    are the second, third and fourth cells of :func:`profile_markdown`'s table.
    """
    if not 0 <= outlier_share < 1:
        raise ValueError(f"outlier_share must be in [0, 1), got {outlier_share}")
    described = [
        f for f in (stats.features if described is None else described) if f in stats.features
    ]
    flat = similar_features(stats, described)
    records: list[dict[str, Any]] = []
    # Records, not itertuples: feature names need not be Python identifiers.
    for values in stats.segments.to_dict("records"):
        segment = int(values["segment"])
        medians = {f: float(values[f"{f}_median"]) for f in stats.features}
        words = _segment_words(medians, described, stats.population, flat)
        name = archetype(segment, words, medians, typical_gap_days)
        sentence, action = ARCHETYPES[name]
        size, share, revenue_share = (
            int(values["size"]),
            float(values["share"]),
            float(values["revenue_share"]),
        )
        record: dict[str, Any] = {
            "segment": segment,
            "size": size,
            "share": share,
            "revenue_share": revenue_share,
            "archetype": name,
            "archetype_text": sentence,
            "description": description(
                size, share, revenue_share, segment, words, medians, typical_gap_days
            ),
            "purchase_text": purchase_text(words),
            "loyalty_text": loyalty_text(words),
            "action": action,
            "is_outlier": segment != NOISE and is_outlier(size, share, outlier_share),
        }
        for f in stats.features:
            record[f"{f}_median"] = medians[f]
            record[f"{f}_mean"] = float(values[f"{f}_mean"])
            if f in words:
                record[f"{f}_word"] = words[f]
        records.append(record)
    return pd.DataFrame.from_records(records)


def _cell(value: object) -> str:
    """Text made safe for one Markdown table cell: no pipes, no line breaks."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|")


def profile_markdown(profiles: pd.DataFrame) -> str:
    """The seed analysis's Markdown table, one row per segment (noise labelled "noise").

    | Cluster | Units Purchased | Loyalty Segment | Num Orders | Count |, where the
    cells hold the purchase words, the loyalty/orders/diversity words, the
    archetype sentence and the segment size.
    """
    lines = [_MARKDOWN_HEADER]
    for row in profiles.itertuples(index=False):
        label = "noise" if int(row.segment) == NOISE else str(int(row.segment))
        cells = (label, row.purchase_text, row.loyalty_text, row.archetype_text, int(row.size))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
