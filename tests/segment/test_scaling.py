"""The scaler: log1p on heavy-tailed features, standardisation, zero variance reported."""

import numpy as np
import pandas as pd
import pytest

from custseg.errors import InputDataError
from custseg.segment.scaling import FeatureScaler


def _frame():
    return pd.DataFrame(
        {"spend": [0.0, 9.0, 99.0, 999.0], "tenure": [10.0, 20.0, 30.0, 40.0], "flat": [1.0] * 4}
    )


def test_log_then_standardise():
    scaler = FeatureScaler.fit_pandas(_frame(), ["spend", "tenure", "flat"], ["spend"])
    assert scaler.kept == ["spend", "tenure"]
    assert scaler.zero_variance == ["flat"]
    X = scaler.transform_pandas(_frame())
    logs = np.log1p([0.0, 9.0, 99.0, 999.0])
    assert X[:, 0] == pytest.approx((logs - logs.mean()) / logs.std())
    assert X.mean(axis=0) == pytest.approx([0, 0])
    assert X.std(axis=0) == pytest.approx([1, 1])
    back = scaler.inverse_transform(X)
    assert back["spend"].to_numpy() == pytest.approx([0.0, 9.0, 99.0, 999.0])


def test_spark_fit_equals_pandas_fit(spark):
    frame = _frame()
    a = FeatureScaler.fit(spark.createDataFrame(frame), ["spend", "tenure", "flat"], ["spend"])
    b = FeatureScaler.fit_pandas(frame, ["spend", "tenure", "flat"], ["spend"])
    assert a.kept == b.kept and a.zero_variance == b.zero_variance
    assert a.means == pytest.approx(b.means) and a.stds == pytest.approx(b.stds)
    scaled = a.transform(spark.createDataFrame(frame)).select("features").toPandas()
    assert np.vstack(scaled["features"]) == pytest.approx(b.transform_pandas(frame))


def test_round_trip_dict():
    scaler = FeatureScaler.fit_pandas(_frame(), ["spend", "tenure", "flat"], ["spend"])
    again = FeatureScaler.from_dict(scaler.to_dict())
    assert again == scaler


def test_all_constant_is_an_error():
    frame = pd.DataFrame({"a": [1.0, 1.0], "b": [2.0, 2.0]})
    with pytest.raises(InputDataError, match=r"every feature has zero variance \(a, b\)"):
        FeatureScaler.fit_pandas(frame, ["a", "b"], [])


def test_unknown_log_feature(spark):
    with pytest.raises(InputDataError, match="unknown feature"):
        FeatureScaler.fit(spark.createDataFrame(_frame()), ["spend"], ["nope"])


def test_net_spend_below_zero_keeps_its_sign_and_order():
    # A customer whose returns exceed their purchases in the data has a negative net spend.
    frame = pd.DataFrame({"spend": [-50.0, 0.0, 9.0, 999.0], "tenure": [1.0, 2.0, 3.0, 4.0]})
    scaler = FeatureScaler.fit_pandas(frame, ["spend", "tenure"], ["spend"])
    X = scaler.transform_pandas(frame)
    logs = np.array([-np.log1p(50.0), 0.0, np.log1p(9.0), np.log1p(999.0)])
    assert X[:, 0] == pytest.approx((logs - logs.mean()) / logs.std())
    assert np.all(np.diff(X[:, 0]) > 0)
    assert scaler.inverse_transform(X)["spend"].to_numpy() == pytest.approx(
        frame["spend"].to_numpy()
    )


def test_a_feature_with_no_values_is_unavailable_not_an_error(spark):
    # Product diversity when the input has no product ids: every value is null.
    frame = pd.DataFrame(
        {"spend": [1.0, 5.0, 9.0], "products": [None, None, None], "flat": [2.0] * 3}
    )
    frame["products"] = frame["products"].astype("float64")
    rows = [(1.0, None, 2.0), (5.0, None, 2.0), (9.0, None, 2.0)]
    sdf = spark.createDataFrame(rows, "spend double, products double, flat double")
    for scaler in (
        FeatureScaler.fit_pandas(frame, ["spend", "products", "flat"], ["spend", "products"]),
        FeatureScaler.fit(sdf, ["spend", "products", "flat"], ["spend", "products"]),
    ):
        assert scaler.kept == ["spend"]
        assert scaler.unavailable == ["products"] and scaler.zero_variance == ["flat"]
        assert FeatureScaler.from_dict(scaler.to_dict()).unavailable == ["products"]


def test_no_feature_with_values_stops_with_a_reason():
    frame = pd.DataFrame({"products": [np.nan, np.nan]})
    with pytest.raises(InputDataError, match="no feature has values"):
        FeatureScaler.fit_pandas(frame, ["products"], [])
