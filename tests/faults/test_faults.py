"""Issue #7: inject a known fault, check the figure. The scenarios are in scenarios.py;
``benchmarks/faults_report.py`` prints them as one table.

Cases that run the CLI in subprocesses are marked slow (they still run in CI). Each
scenario runs once per session; several tests may assert different figures of it.
"""

from __future__ import annotations

import pytest
import scenarios as sc

from custseg.data.generate import BAD_RECORD_KINDS

# -- bad records and idempotency (in-process) --------------------------------------------


@pytest.mark.spark
@pytest.mark.parametrize(
    "scenario", [sc.bad_records_low, sc.bad_records_high], ids=["0.1pct", "10pct"]
)
def test_bad_records_are_quarantined_exactly_by_reason(outcome, scenario):
    r = outcome(scenario)
    assert r.ok, r.figure
    for kind in BAD_RECORD_KINDS:
        counts = r.details["per_kind"][kind]
        assert counts["injected"] >= 1
        # bronze.quarantine by reason, and the printed `quarantined sales_orders/<reason>  <count>`
        assert counts["table"] == counts["injected"], kind
        assert counts["printed"] == counts["injected"], kind
    assert r.details["extra"] == {}
    # bronze.ingest_summary and the printed `<table> in X = kept Y + quarantined Z` agree
    for table, row in r.details["summary"].items():
        assert row["rows_in"] == row["rows_kept"] + row["rows_quarantined"], table
        assert r.details["conserved"][table], table
    for table, rows_in in r.details["expected_in"].items():
        assert r.details["summary"][table]["rows_in"] == rows_in
        assert r.details["summary"][table]["rows_kept"] == r.details["expected_kept"][table]


@pytest.mark.spark
def test_ingest_twice_is_idempotent(outcome):
    r = outcome(sc.ingest_twice)
    assert r.ok, r.figure
    assert r.details["before"] == r.details["after"]
    # the quarantine is replaced, not appended to
    assert r.details["before"]["bronze.quarantine"] > 0
    assert set(r.details["versions"].values()) == {2}


# -- input edge cases (in-process CLI) -------------------------------------------------------


@pytest.mark.spark
def test_blank_sales_orders_file_ends_with_one_clear_line(outcome):
    r = outcome(sc.edge_blank_orders_file)
    assert r.ok, r.outcome
    assert r.details["code"] == 2
    assert sc.error_lines(r.details["err"]) == [
        "custseg: error: ingest stopped: sales_orders kept 0 of 0 rows (the input holds none)"
    ]
    assert r.details["orders"] == {}  # nothing published: no ingest summary of this run


@pytest.mark.spark
def test_one_customer_ends_with_one_clear_line(outcome):
    r = outcome(sc.edge_one_customer)
    assert r.ok, r.outcome
    assert sc.error_lines(r.details["err"]) == [
        "custseg: error: gold.customer_features has 1 customer(s) with orders; "
        "segmentation needs at least 2"
    ]


@pytest.mark.spark
def test_identical_customers_end_with_a_zero_variance_error(outcome):
    r = outcome(sc.edge_identical_customers)
    assert r.ok, r.outcome
    [line] = sc.error_lines(r.details["err"])
    assert line.startswith("custseg: error: every feature has zero variance (")
    assert "nothing to segment" in line


@pytest.mark.spark
def test_customers_csv_holding_json_is_refused_by_its_header(outcome):
    r = outcome(sc.edge_customers_csv_is_json)
    assert r.ok, r.outcome
    [line] = sc.error_lines(r.details["err"])
    assert line.startswith(
        "custseg: error: customers header does not match the retail-org layout in "
    )


@pytest.mark.spark
def test_utf8_bom_is_not_part_of_the_data(outcome):
    r = outcome(sc.edge_bom)
    assert r.ok, r.figure
    assert r.details["bom_ids"] == []


@pytest.mark.spark
@pytest.mark.parametrize(
    "scenario", [sc.edge_non_ascii_names, sc.edge_long_name], ids=["non-ascii", "10000-chars"]
)
def test_names_survive_ingest_exactly(outcome, scenario):
    r = outcome(scenario)
    assert r.ok, r.figure
    assert r.details["exact"] == r.details["planted"] >= 1
    assert r.details["quarantined"] == 0


@pytest.mark.spark
def test_non_finite_prices_are_quarantined_as_wrong_type(outcome):
    r = outcome(sc.edge_nan_prices)
    assert r.ok, r.outcome
    reasons = r.details["reasons"]
    assert [reasons.get(v) for v in sc.NON_FINITE] == ["wrong_type"] * len(sc.NON_FINITE)
    assert reasons["bare NaN"] == "malformed_json"  # a bare NaN token is not JSON


@pytest.mark.spark
def test_whitespace_only_lines_are_not_rows(outcome):
    r = outcome(sc.edge_whitespace_lines)
    assert r.details["quarantined"] == [], r.outcome
    assert r.ok


# -- a full disk --------------------------------------------------------------------------


@pytest.mark.slow
def test_disk_full_keeps_the_previous_version(outcome):
    r = outcome(sc.disk_full)
    assert r.details["in_process_ok"], r.outcome
    assert r.details["kept"] == 1 and r.details["rows"] == 50
    assert r.details["leftovers"] == ["v00000001"]
    # The CLI: exit 2, one custseg line; the failed ingest stage published none of its tables.
    assert r.details["cli_code"] == 2
    [line] = r.details["cli_errors"]
    assert line.startswith("custseg: error: disk full while writing ") and line.endswith(
        "; the previous version is kept"
    )
    assert r.details["written"] == {} and r.details["failed"]
    assert r.ok


@pytest.mark.slow
def test_disk_full_cli_prints_no_java_stack_trace(outcome):
    r = outcome(sc.disk_full)
    assert r.details["java_trace_lines"] == 0, r.details["stderr_messages"]


@pytest.mark.slow
def test_disk_already_full_ends_with_one_clear_line(outcome):
    r = outcome(sc.disk_already_full)
    assert not r.details["traceback"], r.details["stderr"]
    assert r.details["code"] == 2
    assert r.ok


# -- one shared `custseg run` x 2 at once: concurrency, personal data, a script-tag name ----------


@pytest.mark.slow
def test_concurrent_runs_one_refused_tables_correct(outcome):
    r = outcome(sc.concurrent_runs)
    assert r.ok, r.figure
    assert r.details["locked"] == 0 and r.details["tracebacks"] == 0
    assert r.details["unreadable"] == []
    assert r.details["features_rows"] == r.details["segments_rows"] == r.details["expected_rows"]
    if r.details["codes"] == [0, 2]:  # they overlapped: the second was refused, naming the holder
        [line] = r.details["busy_line"]
        assert sc.BUSY_LINE.match(line), line
        assert r.details["holder_pid"] == r.details["winner_pid"]
        assert set(r.details["live_versions"].values()) == {1}
    else:
        assert r.details["codes"] == [0, 0]


@pytest.mark.slow
def test_personal_data_stays_in_the_customer_tables(outcome):
    r = outcome(sc.personal_data_canaries)
    assert r.details["found"] == {}, r.details["found"]
    # The scan can see a canary: it is where it must be.
    controls = r.details["controls"]
    assert (
        controls["raw customers.csv"]
        and controls["silver.customers"]
        and controls["bronze.sales_orders"]
    )
    assert controls["unmasked audience export"]
    assert r.ok


@pytest.mark.slow
def test_script_tag_name_is_text_never_markup(outcome):
    r = outcome(sc.script_tag_name)
    assert not r.details["raw_in_report"]
    assert r.details["exceptions"] == []
    assert r.details["detail_name"] == sc.HOSTILE_NAME  # the Customers page shows it as text
    assert r.details["as_markup"] == []
    assert r.ok


# -- signals ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_during_a_gold_write_leaves_a_complete_version(outcome):
    r = outcome(sc.sigkill_gold_write)
    attempts = r.details["attempts"]
    assert all(a["line_seen"] for a in attempts)
    for a in attempts:
        for table, state in a["tables"].items():
            assert state["intact"], (a["delay"], table, state)
    # the features kills: the live customer_features equals the previous run's
    for a in attempts[:-1]:
        assert a["tables"]["customer_features"]["equal_previous"]
    # SIGKILL cannot be handled: a RUNNING MLflow run may stay behind; reported, not asserted.
    assert r.details["running_after_kill"] >= 0
    assert r.ok


@pytest.mark.slow
def test_sigterm_while_tuning_exits_143_and_keeps_tables(outcome):
    r = outcome(sc.sigterm_clustering)
    t = r.details["tuning"]
    assert t["line_seen"]
    assert t["code"] == 143
    assert t["stderr_last"] == sc.TERMINATED_LINE
    assert not t["traceback"], t["stderr"]
    assert t["running"] == 0
    assert t["parent"] in (None, "KILLED")  # tuning runs before the parent MLflow run starts
    assert t["changed"] == []
    assert r.details["tuning_ok"]


@pytest.mark.slow
def test_sigterm_while_writing_kills_the_parent_run_and_keeps_tables(outcome):
    """Not asserted: stderr free of a Python traceback. When the signal lands inside a Py4J call
    (about every second run), Py4J logs 'KeyboardInterrupt while sending command.' with a
    traceback."""
    r = outcome(sc.sigterm_clustering)
    t = r.details["writing"]
    assert t["line_seen"]
    assert t["code"] == 143
    assert t["stderr_last"] == sc.TERMINATED_LINE
    assert t["running"] == 0
    assert t["parent"] == "KILLED"
    assert t["changed"] == []
    assert len(t["intact"]) == len(sc.GOLD_TABLES)
    assert r.ok


@pytest.mark.slow
def test_sigterm_during_ingest_keeps_every_table_at_its_previous_version(outcome):
    r = outcome(sc.sigterm_ingest)
    assert r.details["changed"] == [], r.figure


@pytest.mark.slow
def test_sigterm_during_ingest_exits_143_with_readable_tables(outcome):
    r = outcome(sc.sigterm_ingest)
    assert r.details["line_seen"]
    assert r.details["code"] == 143
    assert r.details["last"] == sc.TERMINATED_LINE
    assert r.details["unreadable"] == []
