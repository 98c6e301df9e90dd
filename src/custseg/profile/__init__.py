"""Segment interpretation: statistics, plain-language rules, and stable names across retrains.

>>> stats = segment_statistics(df, PROFILE_FEATURES)            # Spark, one aggregation
>>> profiles = describe_segments(stats)                          # pandas, deterministic rules
>>> print(profile_markdown(profiles))                            # the seed analysis's table
"""

from custseg.profile.insights import business_insights, value_insights
from custseg.profile.matching import match_segments, migration_counts, migration_matrix, relabel
from custseg.profile.rules import (
    ARCHETYPES,
    NOISE_ARCHETYPE,
    PROFILE_FEATURES,
    WORDS,
    archetype,
    is_outlier,
    qualitative_word,
    word_level,
)
from custseg.profile.statistics import (
    SegmentStatistics,
    segment_statistics,
    segment_statistics_pandas,
    typical_gap_days,
    typical_gap_days_pandas,
)
from custseg.profile.table import describe_segments, profile_markdown, similar_features

__all__ = [
    "ARCHETYPES",
    "NOISE_ARCHETYPE",
    "PROFILE_FEATURES",
    "WORDS",
    "SegmentStatistics",
    "archetype",
    "business_insights",
    "value_insights",
    "describe_segments",
    "is_outlier",
    "match_segments",
    "migration_counts",
    "migration_matrix",
    "profile_markdown",
    "qualitative_word",
    "relabel",
    "segment_statistics",
    "segment_statistics_pandas",
    "similar_features",
    "typical_gap_days",
    "typical_gap_days_pandas",
    "word_level",
]
