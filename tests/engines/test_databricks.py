"""The Databricks deployment files, checked here without a workspace: the bundle's job runs
real ``custseg`` subcommands with flags the CLI accepts, its config loads, and the App runs
the real dashboard script with the variables the dashboard reads."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from custseg.cli import COMMANDS, build_parser
from custseg.config import load_config
from custseg.store.source import ENV_WAREHOUSE_ID, Source

ROOT = Path(__file__).parents[2]
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@pytest.fixture(scope="module")
def bundle() -> dict:
    return yaml.safe_load((ROOT / "databricks.yml").read_text(encoding="utf-8"))


def resolve(value: str, bundle: dict) -> str:
    """``${var.x}`` -> the variable's default; ``${workspace.file_path}`` -> the repository root."""

    def one(match: re.Match) -> str:
        key = match.group(1)
        if key.startswith("var."):
            return resolve(str(bundle["variables"][key[4:]]["default"]), bundle)
        if key == "workspace.file_path":
            return str(ROOT)
        raise AssertionError(f"unknown bundle reference ${{{key}}}")

    return PLACEHOLDER.sub(one, value)


def tasks(bundle: dict) -> list[dict]:
    return bundle["resources"]["jobs"]["custseg_pipeline"]["tasks"]


def test_the_job_runs_the_stages_in_order(bundle):
    steps = tasks(bundle)
    assert [t["task_key"] for t in steps] == ["ingest", "features", "segment"]
    assert [t.get("depends_on", [{}])[0].get("task_key") for t in steps] == [
        None,
        "ingest",
        "features",
    ]
    clusters = {
        c["job_cluster_key"]
        for c in bundle["resources"]["jobs"]["custseg_pipeline"]["job_clusters"]
    }
    assert all(t["job_cluster_key"] in clusters for t in steps)


def test_wheel_tasks_call_the_custseg_entry_point(bundle):
    scripts = {
        e.name: e.value
        for e in entry_points(group="console_scripts")
        if e.value.startswith("custseg.")
    }
    assert (
        scripts["custseg"] == "custseg.cli:main"
    )  # the installed console script (pyproject [project.scripts])
    assert bundle["artifacts"]["custseg_wheel"]["type"] == "whl"
    for task in tasks(bundle):
        wheel = task["python_wheel_task"]
        assert wheel["package_name"] == "custseg" and wheel["entry_point"] in scripts
        assert {"whl": "./dist/*.whl"} in task["libraries"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_task_parameters_are_accepted_by_the_cli(bundle, index):
    task = tasks(bundle)[index]
    argv = [resolve(str(p), bundle) for p in task["python_wheel_task"]["parameters"]]
    args = build_parser().parse_args(argv)  # exits (fails the test) on an unknown flag
    assert args.command == task["task_key"] and args.command in COMMANDS
    config_path = Path(args.config.removeprefix("/Workspace"))
    assert config_path.is_file(), f"the job's --config {args.config} is not in the repository"


def test_the_databricks_config_loads_with_catalog_tables_and_unity_catalog_models():
    config = load_config(ROOT / "conf" / "databricks.yaml")
    assert config.storage.format == "delta"
    assert (
        config.storage.table_name("gold", "customer_features")
        == "main.custseg.gold_customer_features"
    )
    assert config.tracking.registry_uri == "databricks-uc"
    assert config.tracking.model_name.count(".") == 2


def test_the_app_runs_the_real_dashboard_with_the_variables_it_reads():
    app = yaml.safe_load((ROOT / "app.yaml").read_text(encoding="utf-8"))
    command = app["command"]
    assert command[:2] == ["streamlit", "run"] and (ROOT / command[2]).is_file()
    assert command[2] == "src/custseg/dashboard/app.py"
    names = {item["name"] for item in app["env"]}
    read = set(Source(lakehouse=Path("x")).to_env()) | {"MLFLOW_REGISTRY_URI"}
    assert names <= read, f"app.yaml sets variables the dashboard does not read: {names - read}"
    env = {item["name"]: item["value"] for item in app["env"] if "value" in item}
    source = Source.from_env(env)
    databricks = load_config(ROOT / "conf" / "databricks.yaml")
    assert source.model_name == databricks.tracking.model_name
    assert source.tracking_uri == "databricks"
    # The job's catalog tables, read through the SQL warehouse the App is given as a resource.
    assert source.catalog_schema == Source.from_config(databricks).catalog_schema
    from_resource = {item["name"]: item["valueFrom"] for item in app["env"] if "valueFrom" in item}
    assert from_resource == {ENV_WAREHOUSE_ID: "sql-warehouse"}


def test_the_bundle_gives_the_app_its_sql_warehouse(bundle):
    app = bundle["resources"]["apps"]["custseg_dashboard"]
    resources = {r["name"]: r for r in app["resources"]}
    assert resources["sql-warehouse"]["sql_warehouse"] == {
        "id": "${var.warehouse_id}",
        "permission": "CAN_USE",
    }
    assert "warehouse_id" in bundle["variables"]


def test_the_bundle_deploys_the_app_from_the_repository(bundle):
    app = bundle["resources"]["apps"]["custseg_dashboard"]
    assert (ROOT / app["source_code_path"] / "app.yaml").is_file()
