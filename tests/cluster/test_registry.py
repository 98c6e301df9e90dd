"""The method registry (custseg.methods): every record resolves, and everything else reads it."""

from __future__ import annotations

import inspect
import os
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

    from custseg.cluster._common.base import BaseClusterer

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
        (
            "hierarchical",
            {"n_clusters": 3, "linkage": "ward"},
            {"n_clusters": 7, "linkage": "ward"},
        ),
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


# A new method, added the way the registry's docstring says: a record (here reusing the
# k-means package under another name, with a tuner in a module of its own). Nothing else in
# custseg is edited, yet config, tuning, the comparison, scale-out and the segmenter take it.
_TOY_TUNER = """
from custseg.segment.tuning import tune_kmeans


def tune(X, config, truth):
    result = tune_kmeans(X, config.model_copy(update={"kmeans": config.toy}), truth)
    result.method = "toy"
    return result
"""

_ADD_A_METHOD = """
import dataclasses
import sys

import numpy as np

from custseg.methods import METHODS

METHODS["toy"] = dataclasses.replace(
    METHODS["kmeans"], name="toy", label="Toy", tuner_path="toy_tuner:tune"
)

from custseg.config import load_config
from custseg.segment.comparison import recommend
from custseg.segment.scale_out import full_scale_params
from custseg.segment.scaling import FeatureScaler
from custseg.segment.segmenter import Segmenter
from custseg.segment.tuning import tune

config = load_config(overrides={"segment.methods": ["toy"], "segment.toy.k_max": 4})
X = np.random.default_rng(0).normal(size=(90, 2)) + np.repeat([[0, 0], [8, 0], [0, 8]], 30, axis=0)
result = tune("toy", X, config.segment)
assert result.error is None and result.method == "toy", result
assert recommend([result]) == "toy"
assert full_scale_params(result, 3.0) == {"k": 3}, full_scale_params(result, 3.0)
scaler = FeatureScaler(["a", "b"], [], ["a", "b"], [0.0, 0.0], [1.0, 1.0])
mapping = {0: 1, 1: 2, 2: 3, -1: -1}
Segmenter("toy", scaler, result.estimator, mapping).save(sys.argv[1])
loaded = Segmenter.load(sys.argv[1])
assert loaded.method == "toy" and type(loaded.clusterer) is type(result.estimator)
print("ok")
"""


def test_adding_a_method_is_one_record(tmp_path):
    (tmp_path / "toy_tuner.py").write_text(_TOY_TUNER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-c", _ADD_A_METHOD, str(tmp_path / "model")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().endswith("ok")
