"""Timestamp formats: inferred from samples the way real exports write them, refused when
ambiguous."""

import pytest

from custseg.data.timestamps import infer_format
from custseg.errors import InputDataError


def _infer(spark, values):
    return infer_format(spark.createDataFrame([(v,) for v in values], "v string"), "InvoiceDate")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["12/1/2010 8:26", "12/13/2010 9:01"], "M/d/yyyy H:mm"),
        (["13/1/2010 8:26", "1/12/2010 9:01"], "d/M/yyyy H:mm"),
        (["2010-12-01 08:26:00", "2011-01-13 17:05:00"], "iso"),
        (["2010-12-01T08:26:00Z", "2011-01-13"], "iso"),
        (["19970101", "19980630"], "yyyyMMdd"),
        (["25.12.2011", "01.01.2012"], "d.M.yyyy"),
        (["12/1/2010 8:26:00 AM", "12/13/2010 1:05:00 PM"], "M/d/yyyy h:mm:ss a"),
    ],
)
def test_formats_real_exports_use_are_inferred(spark, values, expected):
    assert _infer(spark, values) == expected


def test_day_month_ambiguity_is_refused(spark):
    with pytest.raises(
        InputDataError, match=r"'InvoiceDate' is ambiguous: .*'d/M/yyyy' and 'M/d/yyyy'"
    ):
        _infer(spark, ["01/02/2011", "03/04/2011", "05/06/2011"])


def test_plain_numbers_are_never_guessed_as_epochs(spark):
    with pytest.raises(
        InputDataError, match=r"holds plain numbers such as '1291191960'.*epoch_seconds"
    ):
        _infer(spark, ["1291191960", "1291278360"])
