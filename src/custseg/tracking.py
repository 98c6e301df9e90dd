"""MLflow: one experiment, a parent run per pipeline run, nested runs per method and sweep point,
the segmenter logged as a pyfunc model, the recommended one registered with the ``champion`` alias;
the lifetime-value model likewise, under its own name.

Embedded default: ``sqlite:///mlflow.db`` and ``./mlruns`` in the working folder;
``tracking.tracking_uri`` (or ``$MLFLOW_TRACKING_URI``) points anywhere else.
Nothing personal is logged: parameters, metrics, aggregate tables, figures,
and a dataset description without customer ids.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from custseg.config import TrackingConfig
from custseg.errors import ModelError
from custseg.segment.segmenter import Segmenter
from custseg.value.model import VALUE_INPUTS, VALUE_OUTPUTS, ValueModel

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities import Run

SEGMENTER_ARTIFACT = "segmenter"
MODEL_NAME_IN_RUN = "segmenter"
VALUE_ARTIFACT = "value_model.json"
VALUE_MODEL_IN_RUN = "lifetime_value"
# The scoring model needs these at load time (custseg itself must be installed where it is served).
MODEL_REQUIREMENTS = ["numpy", "pandas<3", "scikit-learn", "scipy", "hdbscan", "fastcluster"]


def tracking_uri(config: TrackingConfig) -> str:
    """Config, else $MLFLOW_TRACKING_URI, else the embedded SQLite store in the working folder."""
    return config.resolved_uri()


def setup(config: TrackingConfig) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns its id."""

    uri = tracking_uri(config)
    if uri.startswith("sqlite:///"):
        _prepare_sqlite(uri)
    mlflow.set_tracking_uri(uri)
    # Always set, so a registry an earlier setup in this process chose does not stay: "" is
    # MLflow's default (the tracking URI; databricks-uc beside a databricks tracking URI).
    mlflow.set_registry_uri(config.resolved_registry_uri() or "")
    experiment = mlflow.get_experiment_by_name(config.experiment)
    if experiment is not None:
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        return experiment.experiment_id
    location = config.artifact_location
    if location is None and uri.startswith("sqlite:"):
        location = (Path.cwd() / "mlruns").as_uri()
    experiment_id = mlflow.create_experiment(config.experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _prepare_sqlite(uri: str) -> None:
    """Write-ahead logging, so concurrent runs sharing one SQLite store read while another
    writes instead of failing with "database is locked"."""

    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=60) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


@contextmanager
def run(name: str, nested: bool = False, tags: dict[str, str] | None = None) -> Iterator[Run]:
    """A run that ends FINISHED; KILLED when interrupted (Ctrl-C, SIGTERM); FAILED when its block
    raises.

    Never left RUNNING by anything short of SIGKILL.
    """

    active = mlflow.start_run(run_name=name, nested=nested, tags=tags or {})
    try:
        yield active
    except KeyboardInterrupt:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def log_params(params: dict[str, Any]) -> None:

    mlflow.log_params({k: "none" if v is None else v for k, v in params.items()})


def log_metrics(metrics: dict[str, float]) -> None:

    finite = {
        k: float(v)
        for k, v in metrics.items()
        if v is not None and isinstance(v, (int, float)) and math.isfinite(v)
    }
    if finite:
        mlflow.log_metrics(finite)


def log_table(frame: pd.DataFrame, name: str) -> None:

    mlflow.log_table(
        data=frame.astype(object).where(frame.notna(), None), artifact_file=f"tables/{name}.json"
    )


def log_figure(figure: Any, name: str) -> None:

    mlflow.log_figure(figure, f"figures/{name}.png")


def log_dataset(features: pd.DataFrame, source: str, name: str) -> None:
    """Describe the training input (schema, size, digest): numeric features only, no ids."""

    with warnings.catch_warnings():
        # A local path is both a file and an artifact source to MLflow; either reading is right.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(features, source=source, name=name)
    mlflow.log_input(dataset, context="training")


class SegmenterModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper: raw feature columns in, ``segment`` out."""

    def load_context(self, context: Any) -> None:
        self.segmenter = Segmenter.load(context.artifacts[SEGMENTER_ARTIFACT])

    # No type hints on predict: MLflow would try to infer a schema from them; the signature says it.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]

        return pd.DataFrame({"segment": self.segmenter.predict(model_input)})


def _signature(features: list[str]):

    return ModelSignature(
        inputs=Schema([ColSpec("double", name) for name in features]),
        outputs=Schema([ColSpec("long", "segment")]),
    )


def log_segmenter(segmenter: Segmenter, example: pd.DataFrame | None = None) -> str:
    """Log the segmenter as a pyfunc model in the active run; returns its model URI."""

    with tempfile.TemporaryDirectory(prefix="custseg-model-") as tmp, warnings.catch_warnings():
        # MLflow suggests type hints on predict; custseg gives an explicit signature instead.
        warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
        folder = segmenter.save(Path(tmp) / SEGMENTER_ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=SegmenterModel(),
            artifacts={SEGMENTER_ARTIFACT: str(folder)},
            signature=_signature(segmenter.features),
            pip_requirements=MODEL_REQUIREMENTS,
            input_example=example,
        )
    return info.model_uri


def register_version(
    model_uri: str,
    config: TrackingConfig,
    tags: dict[str, str] | None = None,
    name: str | None = None,
) -> str:
    """Register the model as a new version of ``name`` (default ``config.model_name``); returns
    the version.

    The alias stays where it is until ``move_alias``: a stage moves it only after its gold
    tables are published, so the champion never runs ahead of them.
    """

    version = mlflow.register_model(model_uri, name or config.model_name, tags=tags)
    return str(version.version)


def move_alias(version: str, config: TrackingConfig, name: str | None = None) -> None:
    """Point the alias (``champion``) of ``name`` (default ``config.model_name``) at
    ``version``."""

    MlflowClient().set_registered_model_alias(name or config.model_name, config.alias, version)


class LifetimeValueModel(mlflow.pyfunc.PythonModel):
    """The pyfunc wrapper of the lifetime-value model: frequency, recency, T and monetary_value
    in (the transaction summary's columns, in periods); expected purchases over the horizon,
    probability alive, expected order value and discounted lifetime value out."""

    def load_context(self, context: Any) -> None:
        text = Path(context.artifacts[VALUE_ARTIFACT]).read_text(encoding="utf-8")
        self.model = ValueModel.from_json(text)

    # No type hints on predict: MLflow would try to infer a schema from them; the signature says it.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self.model.predict(model_input)


def log_value_model(model: ValueModel) -> str:
    """Log the lifetime-value model as a pyfunc model in the active run; returns its URI."""
    signature = ModelSignature(
        # frequency is a count (long, as in gold.customer_value); recency, T and value are real.
        inputs=Schema(
            [ColSpec("long" if name == "frequency" else "double", name) for name in VALUE_INPUTS]
        ),
        outputs=Schema([ColSpec("double", name) for name in VALUE_OUTPUTS]),
    )
    with tempfile.TemporaryDirectory(prefix="custseg-value-") as tmp, warnings.catch_warnings():
        # MLflow suggests type hints on predict; custseg gives an explicit signature instead.
        warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")
        # The signature describes the input; an example would be made-up customers.
        warnings.filterwarnings("ignore", message=".*An input example was not provided")
        path = Path(tmp) / VALUE_ARTIFACT
        path.write_text(model.to_json(), encoding="utf-8")
        info = mlflow.pyfunc.log_model(
            name=VALUE_MODEL_IN_RUN,
            python_model=LifetimeValueModel(),
            artifacts={VALUE_ARTIFACT: str(path)},
            signature=signature,
            pip_requirements=["numpy", "pandas<3", "scipy"],
        )
    return info.model_uri


def load_value_model(model_uri: str) -> ValueModel:
    """The ValueModel inside a logged or registered custseg lifetime-value model."""
    return _unwrap(model_uri, LifetimeValueModel, "custseg lifetime-value model").model


def champion_uri(config: TrackingConfig) -> str:
    return f"models:/{config.model_name}@{config.alias}"


def load_segmenter(model_uri: str) -> Segmenter:
    """The Segmenter inside a logged or registered custseg model."""
    return _unwrap(model_uri, SegmenterModel, "custseg segmenter").segmenter


def _unwrap(model_uri: str, wrapper: type, what: str) -> Any:
    """The custseg python model of class ``wrapper`` behind a model URI, or a one-line
    ModelError."""
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as exc:  # MLflow raises several types for a missing model
        raise ModelError(f"cannot load model {model_uri}: {str(exc).splitlines()[0]}") from exc
    python_model = model.unwrap_python_model()
    if not isinstance(python_model, wrapper):
        raise ModelError(f"model {model_uri} is not a {what}")
    return python_model


def load_champion(config: TrackingConfig) -> tuple[Segmenter, str] | None:
    """The current champion and its version, or None when no model has the alias yet."""

    try:
        version = MlflowClient().get_model_version_by_alias(config.model_name, config.alias)
    except MlflowException:
        return None
    return load_segmenter(champion_uri(config)), str(version.version)
