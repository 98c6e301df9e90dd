"""The holdout plot logged to MLflow: actual against predicted repeat purchases per customer,
by the customers' number of repeat purchases in the calibration period."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def holdout_figure(table: pd.DataFrame) -> Figure:
    """Bars: mean purchases per customer in the holdout, actual beside predicted, per group."""
    # lazy: matplotlib is only needed when a holdout check runs
    from matplotlib.figure import Figure

    # A bare Figure draws with Agg when saved: no display needed on servers and in CI.
    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    ax = fig.add_subplot()
    x = range(len(table))
    width = 0.4
    ax.bar([i - width / 2 for i in x], table["actual"], width, label="actual")
    ax.bar([i + width / 2 for i in x], table["predicted"], width, label="predicted (BG/NBD)")
    ax.set_xticks(list(x), list(table["label"]))
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases per customer in the holdout")
    ax.legend()
    fig.tight_layout()
    return fig
