"""The lifetime-value model custseg fits, registers and scores with: BG/NBD (how many purchases,
and whether the customer is still alive) with Gamma-Gamma (how much per purchase), plus the
horizon and discount rate its figures are for.

Both likelihoods depend on the customers only through their summaries, so the fit runs on the
summaries grouped on Spark (``custseg.value.summary``), and the predictions are computed once
per distinct summary on the driver and joined back to the customers on Spark.

Per customer (in gold ``customer_value``):

- expected_purchases: purchases expected over the next ``horizon_days`` (BG/NBD eq. 10);
- probability_alive: the probability the customer has not churned (BG/NBD);
- expected_order_value: the Gamma-Gamma conditional mean of a purchase's value; for a customer
  without repeat purchases, the population mean. A repeat customer whose repeat purchases net to
  zero or less is left out of the Gamma-Gamma fit and gets no order value and no lifetime value
  (null), counted in the stage's notes;
- lifetime_value: expected order value times the expected purchases of each 30-day month of the
  horizon, each month discounted by ``discount_rate_monthly`` (``custseg.value.lifetime_value``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from custseg.value.bgnbd import BGNBDParams, expected_purchases, fit_bgnbd, probability_alive
from custseg.value.gamma_gamma import GammaGammaParams, expected_average_value, fit_gamma_gamma
from custseg.value.lifetime_value import discounted_purchases

if TYPE_CHECKING:
    from datetime import datetime

    from pyspark.sql import DataFrame, SparkSession

    from custseg.config import ValueConfig
    from custseg.value.summary import SpendStatistics

PERIOD_DAYS = {"day": 1.0, "week": 7.0}
VALUE_INPUTS = ["frequency", "recency", "T", "monetary_value"]
VALUE_OUTPUTS = [
    "expected_purchases",
    "probability_alive",
    "expected_order_value",
    "lifetime_value",
]
PURCHASE_KEYS = ["frequency", "recency", "T"]
SPEND_KEYS = ["frequency", "monetary_value"]


@dataclass(frozen=True)
class ValueModel:
    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams
    period: str
    horizon_days: int
    discount_rate_monthly: float
    # Repeat customers left out of Gamma-Gamma because their repeat purchases net to <= 0.
    left_out_of_spend: int = 0

    @property
    def period_days(self) -> float:
        return PERIOD_DAYS[self.period]

    def purchases(self, frame: pd.DataFrame) -> pd.DataFrame:
        """expected_purchases, probability_alive and discounted_purchases for (frequency,
        recency, T) rows, in periods."""
        x, tx, age = (frame[c].to_numpy(dtype=float) for c in PURCHASE_KEYS)
        horizon = self.horizon_days / self.period_days
        return pd.DataFrame(
            {
                "expected_purchases": expected_purchases(self.bgnbd, horizon, x, tx, age),
                "probability_alive": probability_alive(self.bgnbd, x, tx, age),
                "discounted_purchases": discounted_purchases(
                    self.bgnbd,
                    x,
                    tx,
                    age,
                    horizon_days=self.horizon_days,
                    discount_rate_monthly=self.discount_rate_monthly,
                    period_days=self.period_days,
                ),
            },
            index=frame.index,
        )

    def expected_purchases_over(self, periods: float, frame: pd.DataFrame) -> np.ndarray:
        """Purchases expected in the next ``periods`` periods for (frequency, recency, T) rows."""
        x, tx, age = (frame[c].to_numpy(dtype=float) for c in PURCHASE_KEYS)
        return expected_purchases(self.bgnbd, periods, x, tx, age)

    def order_value(self, frame: pd.DataFrame) -> pd.Series:
        """The expected value of a purchase for (frequency, monetary_value) rows; NaN for a
        repeat customer whose repeat purchases net to zero or less."""
        x, m = (frame[c].to_numpy(dtype=float) for c in SPEND_KEYS)
        modelled = (x == 0) | (m > 0)
        values = np.full(x.shape, np.nan)
        values[modelled] = expected_average_value(
            self.gamma_gamma, x[modelled], np.where(x[modelled] == 0, 0.0, m[modelled])
        )
        return pd.Series(values, index=frame.index, name="expected_order_value")

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """VALUE_OUTPUTS for rows of VALUE_INPUTS (the registered pyfunc's predict)."""
        purchases = self.purchases(frame)
        order_value = self.order_value(frame)
        return pd.DataFrame(
            {
                "expected_purchases": purchases["expected_purchases"],
                "probability_alive": purchases["probability_alive"],
                "expected_order_value": order_value,
                "lifetime_value": order_value * purchases["discounted_purchases"],
            }
        )

    def metrics(self) -> dict[str, float]:
        bg, gg = self.bgnbd, self.gamma_gamma
        return {
            "bgnbd.r": bg.r,
            "bgnbd.alpha": bg.alpha,
            "bgnbd.a": bg.a,
            "bgnbd.b": bg.b,
            "bgnbd.log_likelihood": bg.log_likelihood,
            "bgnbd.customers": bg.n_customers,
            "bgnbd.iterations": bg.iterations,
            "gamma_gamma.p": gg.p,
            "gamma_gamma.q": gg.q,
            "gamma_gamma.v": gg.v,
            "gamma_gamma.log_likelihood": gg.log_likelihood,
            "gamma_gamma.customers": gg.n_customers,
            "gamma_gamma.left_out": self.left_out_of_spend,
            "gamma_gamma.iterations": gg.iterations,
        }

    def notes(self) -> list[str]:
        bg, gg = self.bgnbd, self.gamma_gamma
        notes = [
            f"BG/NBD on {bg.n_customers:,.0f} customers: r={bg.r:.4g} alpha={bg.alpha:.4g} "
            f"a={bg.a:.4g} b={bg.b:.4g} (log-likelihood {bg.log_likelihood:,.2f})",
            f"Gamma-Gamma on {gg.n_customers:,.0f} repeat customers: p={gg.p:.4g} q={gg.q:.4g} "
            f"v={gg.v:.4g} (log-likelihood {gg.log_likelihood:,.2f})",
        ]
        if self.left_out_of_spend:
            notes.append(
                f"{self.left_out_of_spend:,} repeat customers whose repeat purchases net to <= 0 "
                "are left out of Gamma-Gamma and have no lifetime value"
            )
        return notes

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ValueModel:
        values = json.loads(text)
        values["bgnbd"] = BGNBDParams(**values["bgnbd"])
        values["gamma_gamma"] = GammaGammaParams(**values["gamma_gamma"])
        return cls(**values)


def fit_value_model(
    stats: pd.DataFrame, spend: SpendStatistics, settings: ValueConfig
) -> ValueModel:
    """Both models fitted on grouped summaries (a ModelFitError names the model that failed)."""
    bgnbd = fit_bgnbd(
        stats["frequency"],
        stats["recency"],
        stats["T"],
        weights=stats["n_customers"],
        penalizer=settings.penalizer,
    )
    table = spend.table
    gamma_gamma = fit_gamma_gamma(
        table["frequency"],
        table["monetary_value"],
        weights=table["n_customers"],
        penalizer=settings.penalizer,
    )
    return ValueModel(
        bgnbd=bgnbd,
        gamma_gamma=gamma_gamma,
        period=settings.period,
        horizon_days=settings.horizon_days,
        discount_rate_monthly=settings.discount_rate_monthly,
        left_out_of_spend=spend.excluded_non_positive,
    )


def score_customers(
    spark: SparkSession,
    summary: DataFrame,
    model: ValueModel,
    stats: pd.DataFrame,
    spend: SpendStatistics,
    as_of: datetime,
) -> DataFrame:
    """gold customer_value: the summary with VALUE_OUTPUTS, from predictions made once per
    distinct summary on the driver and joined back on Spark."""
    # lazy: pyspark stays out of `import custseg.value` (the registered pyfunc loads this module)
    import pyspark.sql.functions as F

    purchases = pd.concat([stats[PURCHASE_KEYS], model.purchases(stats)], axis=1)
    spend_keys = spend.table[SPEND_KEYS]
    order_values = pd.concat([spend_keys, model.order_value(spend_keys)], axis=1)
    population_mean = float(
        model.order_value(pd.DataFrame({"frequency": [0.0], "monetary_value": [0.0]})).iloc[0]
    )
    joined = summary.join(spark.createDataFrame(purchases), PURCHASE_KEYS, "left").join(
        spark.createDataFrame(order_values), SPEND_KEYS, "left"
    )
    order_value = F.when(F.col("frequency") == 0, F.lit(population_mean)).otherwise(
        F.col("expected_order_value")
    )
    return joined.select(
        "customer_id",
        *VALUE_INPUTS,
        "first_purchase",
        "last_purchase",
        "expected_purchases",
        "probability_alive",
        order_value.alias("expected_order_value"),
        (order_value * F.col("discounted_purchases")).alias("lifetime_value"),
        F.lit(model.period).alias("period"),
        F.lit(model.horizon_days).alias("horizon_days"),
        F.lit(as_of).cast("timestamp").alias("as_of"),
    )
