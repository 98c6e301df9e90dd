"""StageReport: what a stage did, shared by every stage, the chain and the CLI summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageReport:
    """What a stage did, for the CLI summary: table row counts, quarantine counts, timing, notes."""

    stage: str
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)
    quarantined: dict[tuple[str, str], int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
