"""One exception family for custseg.

The CLI turns every ``CustsegError`` into one clear line and a non-zero exit,
so messages must name the problem and the offending value.
"""


class CustsegError(Exception):
    """Base class of every error custseg raises on purpose."""


class ConfigError(CustsegError):
    """A configuration key or CLI flag has a value custseg cannot accept."""


class InputDataError(CustsegError):
    """The input data is missing, unreadable or not what it claims to be."""


class EnvironmentProblem(CustsegError):
    """The machine lacks something custseg needs (Java, a package, disk)."""


class ParameterError(CustsegError, ValueError):
    """An estimator parameter is out of range, or does not fit the data."""


class ModelError(CustsegError):
    """A model cannot be found, loaded or used for scoring."""


class ModelFitError(CustsegError):
    """A model's likelihood maximisation did not converge to finite parameters."""
