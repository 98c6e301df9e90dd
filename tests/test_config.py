"""Config: defaults load, overrides apply, bad values get one line naming key and value."""

import pytest

from custseg.config import load_config
from custseg.errors import ConfigError


def test_defaults_load():
    config = load_config()
    assert config.spark.master == "local[*]"
    assert config.storage.format == "parquet"
    assert config.tracking.tracking_uri is None  # -> $MLFLOW_TRACKING_URI or sqlite:///mlflow.db


def test_file_then_overrides(tmp_path):
    file = tmp_path / "c.yml"
    file.write_text("storage:\n  root: /from/file\nspark:\n  driver_memory: 2g\n")
    config = load_config(file, {"storage.root": "/from/flag"})
    assert config.storage.root == "/from/flag"
    assert config.spark.driver_memory == "2g"


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "fragment"),
    [
        ("storage:\n  rooot: x\n", {}, r"unknown config key 'storage.rooot'"),
        ("", {"storage.format": "csv"}, r"'storage.format' has value 'csv'"),
        ("", {"spark.driver_memory": "lots"}, r"'spark.driver_memory' has value 'lots'"),
        ("", {"spark.remote": "http://x"}, r"must start with sc://"),
        ("", {"features.as_of": "yesterday"}, r"'features.as_of' has value 'yesterday'"),
        ("", {"segment.methods": ["dbscan", "magic"]}, r"segment.methods.1"),
        ("", {"segment.kmeans.k_max": 1}, r"segment.kmeans.k_max"),
        ("", {"segment.engine": "gpu"}, r"'segment.engine' has value 'gpu'"),
        ("", {"segment.exact_max_rows": -1}, r"'segment.exact_max_rows' has value -1"),
        (
            "",
            {"segment.hierarchical.k_min": 5, "segment.hierarchical.k_max": 3},
            r"must be >= k_min \(5\)",
        ),
        ("- a\n- b\n", {}, r"must hold a mapping"),
        ("a: [\n", {}, r"not valid YAML"),
    ],
)
def test_bad_values_are_named(tmp_path, yaml_text, overrides, fragment):
    file = tmp_path / "c.yml"
    file.write_text(yaml_text)
    with pytest.raises(ConfigError, match=fragment) as info:
        load_config(file, overrides)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yml")


def test_importing_custseg_does_not_start_spark():
    import subprocess
    import sys

    code = (
        "import custseg, custseg.config, custseg.cli, custseg.stages.chain, custseg.storage, "
        "custseg.features; import sys; print('pyspark.sql.session' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
