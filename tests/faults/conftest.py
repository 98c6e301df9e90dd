"""Fixtures of the fault suite: one Shared (scratch root, shared data and runs) for the whole
session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# `import scenarios`, whatever the import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def shared(spark, tmp_path_factory):
    from scenarios import Shared

    return Shared(spark, tmp_path_factory.mktemp("faults"))


@pytest.fixture()
def outcome(shared):
    """Run a scenario once per session (later tests reuse its result); skip when it cannot run
    here."""

    def get(scenario):
        result = shared.result(scenario)
        if result.skipped:
            pytest.skip(result.skipped)
        assert "error" not in result.details, result.details["error"]
        return result

    return get
