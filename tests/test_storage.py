"""The lakehouse: versioned atomic writes, a failed write leaves the previous version live."""

import pytest

from custseg.config import StorageConfig
from custseg.errors import InputDataError
from custseg.storage import Lakehouse, current_path, list_versions, set_current


def test_versions_and_pointer(spark, tmp_path):
    lake = Lakehouse(spark, StorageConfig(root=str(tmp_path), keep_versions=2))
    for n in (3, 5, 7, 9):
        lake.write(spark.range(n), "gold", "t")
    assert lake.read("gold", "t").count() == 9
    assert list_versions(tmp_path, "gold", "t") == [3, 4]
    assert current_path(tmp_path, "gold", "t").name == "v00000004"
    set_current(tmp_path, "gold", "t", 3)
    assert lake.read("gold", "t").count() == 7


def test_failed_write_keeps_previous_version(spark, tmp_path):
    import pyspark.sql.functions as F

    lake = Lakehouse(spark, StorageConfig(root=str(tmp_path)))
    lake.write(spark.range(4), "silver", "t")
    failing = spark.range(10).select(F.raise_error(F.lit("boom")).alias("x"))
    with pytest.raises(Exception, match="boom"):
        lake.write(failing, "silver", "t")
    assert lake.read("silver", "t").count() == 4
    assert list_versions(tmp_path, "silver", "t") == [1]


def test_missing_table_says_which_command(spark, tmp_path):
    lake = Lakehouse(spark, StorageConfig(root=str(tmp_path)))
    with pytest.raises(
        InputDataError, match=r"gold.customer_features not found .* run 'custseg features'"
    ):
        lake.read("gold", "customer_features")


def test_rollback_to_the_previous_version(spark, tmp_path):
    from custseg.storage import describe_tables, rollback

    lake = Lakehouse(spark, StorageConfig(root=str(tmp_path)))
    for n in (1, 2, 3):
        lake.write(spark.range(n), "gold", "t")
    assert describe_tables(tmp_path) == [("gold.t", 3, [1, 2, 3])]
    assert rollback(tmp_path, "gold", "t") == 2
    assert lake.read("gold", "t").count() == 2
    assert rollback(tmp_path, "gold", "t", 1) == 1
    with pytest.raises(InputDataError, match=r"no version older than the live one \(1\)"):
        rollback(tmp_path, "gold", "t")
    with pytest.raises(InputDataError, match=r"no complete version 9; kept: \[1, 2, 3\]"):
        rollback(tmp_path, "gold", "t", 9)
    lake.write(spark.range(4), "gold", "t")  # a new write after a rollback becomes live
    assert lake.read("gold", "t").count() == 4


def test_second_holder_of_the_lakehouse_is_refused(tmp_path):
    import subprocess
    import sys

    from custseg.storage import LakehouseBusy, exclusive

    with exclusive(tmp_path):
        with (
            pytest.raises(LakehouseBusy, match=r"is in use by another custseg run \(pid \d+ since"),
            exclusive(tmp_path),
        ):
            pass
        code = f"from custseg.storage import exclusive\nwith exclusive({str(tmp_path)!r}): pass"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert other.returncode != 0 and "in use by another custseg run" in other.stderr
    with exclusive(tmp_path):  # released when the block ends
        pass


def test_a_stage_publishes_its_tables_together_or_not_at_all(spark, tmp_path):
    lake = Lakehouse(spark, StorageConfig(root=str(tmp_path)))
    lake.write(spark.range(1), "silver", "a")
    lake.write(spark.range(1), "silver", "b")
    with lake.publishing():
        lake.write(spark.range(2), "silver", "a")
        assert lake.read("silver", "a").count() == 2  # the stage sees its own pending version
        assert (
            Lakehouse(spark, lake.config).read("silver", "a").count() == 1
        )  # nobody else does yet
        lake.write(spark.range(2), "silver", "b")
    assert [lake.read("silver", t).count() for t in "ab"] == [2, 2]

    with pytest.raises(RuntimeError, match="stop"), lake.publishing():
        lake.write(spark.range(3), "silver", "a")
        lake.write(spark.range(3), "silver", "c")
        raise RuntimeError("stop")
    assert lake.read("silver", "a").count() == 2
    assert list_versions(tmp_path, "silver", "a") == [1, 2]  # the unpublished version is gone
    assert not lake.exists("silver", "c")


def test_a_publish_cut_short_is_rolled_forward_by_the_next_run(spark, tmp_path):
    import json

    from custseg.storage import JOURNAL, current_version, exclusive

    lake = Lakehouse(spark, StorageConfig(root=str(tmp_path)))
    for n in (1, 2):
        lake.write(spark.range(n), "gold", "a")
        lake.write(spark.range(n), "gold", "b")
    # A run killed between the journal and the renames: a moved, b not yet.
    set_current(tmp_path, "gold", "a", 1)
    set_current(tmp_path, "gold", "b", 1)
    (tmp_path / JOURNAL).write_text(json.dumps([["gold", "a", 2], ["gold", "b", 2]]))
    set_current(tmp_path, "gold", "a", 2)
    with exclusive(tmp_path):
        assert [current_version(tmp_path, "gold", t) for t in "ab"] == [2, 2]
    assert not (tmp_path / JOURNAL).exists()


def test_lock_on_a_full_disk_is_a_storage_error(tmp_path, monkeypatch):
    import errno
    import os

    from custseg.storage import StorageFull, exclusive

    def no_space(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", no_space)
    with (
        pytest.raises(
            StorageFull, match=r"disk full: cannot write the lock file .*\.custseg\.lock"
        ),
        exclusive(tmp_path),
    ):
        pass
