"""The method registry (custseg.methods): every record resolves, and everything else reads it."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing

import numpy as np
import pytest

from custseg.cli import build_parser
from custseg.config import SegmentConfig, default_values, load_config
from custseg.errors import ConfigError
from custseg.methods import METHODS, PREFERENCE, Method, MethodSettings
from custseg.segment import comparison
from custseg.segment.tuning import MethodResult


@pytest.mark.parametrize("name", list(METHODS))
def test_every_record_resolves_to_real_classes_and_tuners(name):
    from pyspark.ml import Estimator

    from custseg.cluster._base import BaseClusterer

    record = METHODS[name]
    assert record.name == name
    assert issubclass(record.estimator(), BaseClusterer)
    assert issubclass(record.spark_estimator(), Estimator)
    assert callable(record.tuner())
    assert issubclass(record.settings, MethodSettings)
    if record.k_param is not None:  # the estimator takes the number of segments by this name
        assert record.k_param in inspect.signature(record.estimator()).parameters


@pytest.mark.parametrize("name", list(METHODS))
def test_every_tuner_returns_its_own_method(name):
    X = np.random.default_rng(0).normal(size=(60, 2)) + np.repeat([[0, 0], [6, 6]], 30, axis=0)
    result = METHODS[name].tuner()(X, load_config().segment, None)
    assert result.method == name
    assert set(result.params) <= set(inspect.signature(METHODS[name].estimator()).parameters)


def test_a_bad_path_fails_when_resolved():
    record = Method("nope", "Nope", "custseg.cluster:Nope", "x:y", "x:y", MethodSettings, 9)
    with pytest.raises(AttributeError):
        record.estimator()


def test_config_accepts_exactly_the_registry_names():
    accepted = typing.get_args(typing.get_args(SegmentConfig.model_fields["methods"].annotation)[0])
    assert list(accepted) == list(METHODS)
    assert load_config().segment.methods == list(METHODS)
    assert default_values()["segment"]["methods"] == list(METHODS)
    with pytest.raises(ConfigError, match="'segment.methods.0' has value 'spectral'"):
        load_config(overrides={"segment.methods": ["spectral"]})


def test_every_method_has_its_config_section():
    config = load_config().segment
    for name, record in METHODS.items():
        assert isinstance(getattr(config, name), record.settings)
    with pytest.raises(ConfigError, match="unknown config key 'segment.kmeans.eps'"):
        load_config(overrides={"segment.kmeans.eps": 1.0})


def test_preference_orders_by_interpretability():
    assert PREFERENCE == ["hierarchical", "kmeans", "hdbscan", "dbscan"]
    assert comparison.PREFERENCE is PREFERENCE


class _Fitted:
    n_clusters_ = 7


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("dbscan", {"eps": 0.5, "min_samples": 10}, {"eps": 0.5, "min_samples": 25}),
        (
            "hdbscan",
            {"min_cluster_size": 10, "min_samples": None},
            {"min_cluster_size": 25, "min_samples": 10},
        ),
        (
            "hdbscan",
            {"min_cluster_size": 10, "min_samples": 4},
            {"min_cluster_size": 25, "min_samples": 4},
        ),
        ("hierarchical", {"n_clusters": 3, "linkage": "ward"}, {"n_clusters": 7, "linkage": "ward"}),
        ("kmeans", {"k": 3}, {"k": 7}),
    ],
)
def test_parameters_carry_from_a_sample_to_all_customers(name, params, expected):
    from custseg.segment.scale_out import full_scale_params

    result = MethodResult(name, params, _Fitted(), np.zeros(1), {}, [], "")
    assert full_scale_params(result, 2.5) == expected
    assert list(full_scale_params(result, 2.5)) == list(params)  # the order they are shown in


def test_importing_the_registry_imports_neither_spark_nor_segment():
    code = (
        "import sys; import custseg.methods; "
        "print(sorted(m for m in sys.modules if m.startswith(('pyspark', 'custseg.segment', "
        "'custseg.cluster', 'numpy'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_config_models_state_the_same_defaults_as_defaults_yaml():
    from custseg.config import Config

    models = Config().model_dump(by_alias=True, mode="json")
    packaged = default_values()
    # log_features: a SegmentConfig built in code logs nothing unless told; the YAML names them.
    models["segment"]["log_features"] = packaged["segment"]["log_features"]
    assert models == packaged


def test_help_shows_the_packaged_defaults():
    segment = build_parser()._subparsers._group_actions[0].choices["segment"]
    helps = {a.dest: a.help for a in segment._actions}
    values = default_values()
    assert f"(default {values['segment']['max_driver_customers']})" in helps["max_driver_customers"]
    assert f"(default {','.join(values['segment']['methods'])})" in helps["methods"]
    assert f"(default ./{values['storage']['root']})" in helps["lakehouse"]
