"""Which steps a ckpt.training.Checkpointer keeps (Orbax's
``ocp.training.preservation_policies``). A step is kept when any policy
given keeps it; the newest step is always kept."""
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

from ..errors import InvalidArgumentError


class PreservationPolicy:
    """Base of the policies: each says what it is as JSON for ckpt's core,
    which records it in the root (``ckpt ls --keep`` shows it)."""

    def to_json(self) -> dict:
        raise NotImplementedError

    def _to_json(self, functions: list) -> dict:
        """to_json(), with the Python functions the policy calls appended to
        ``functions`` and named by their index there."""
        return self.to_json()


@dataclass(frozen=True)
class PreserveAll(PreservationPolicy):
    """Keeps every step."""

    def to_json(self):
        return {"policy": "PreserveAll"}


@dataclass(frozen=True)
class LatestN(PreservationPolicy):
    """Keeps the newest ``n`` steps."""
    n: int

    def to_json(self):
        return {"policy": "LatestN", "n": self.n}


@dataclass(frozen=True)
class EveryNSeconds(PreservationPolicy):
    """Keeps a step at least every ``interval_secs`` seconds."""
    interval_secs: float

    def to_json(self):
        return {"policy": "EveryNSeconds", "interval_secs": self.interval_secs}


@dataclass(frozen=True)
class EveryNSteps(PreservationPolicy):
    """Keeps the steps that are multiples of ``interval_steps`` (or, not
    exact, the first at least that far from the last kept)."""
    interval_steps: int
    exact_interval: bool = True
    max_to_keep: Optional[int] = None

    def to_json(self):
        return {"policy": "EveryNSteps", "interval_steps": self.interval_steps,
                "exact_interval": self.exact_interval,
                "max_to_keep": self.max_to_keep}


@dataclass(frozen=True)
class EveryNStepsClosest(PreservationPolicy):
    """Keeps the step closest to each multiple of ``interval_steps``."""
    interval_steps: int
    max_to_keep: Optional[int] = None

    def to_json(self):
        return {"policy": "EveryNStepsClosest",
                "interval_steps": self.interval_steps,
                "max_to_keep": self.max_to_keep}


@dataclass(frozen=True)
class LatestDuration(PreservationPolicy):
    """Keeps the steps of the last ``duration_secs`` seconds."""
    duration_secs: float

    def to_json(self):
        return {"policy": "LatestDuration", "duration_secs": self.duration_secs}


@dataclass(frozen=True)
class CustomSteps(PreservationPolicy):
    """Keeps the steps listed."""
    steps: Sequence[int]

    def to_json(self):
        return {"policy": "CustomSteps", "steps": list(self.steps)}


@dataclass(frozen=True)
class BestN(PreservationPolicy):
    """Keeps the ``n`` best steps by a metric (largest first; ``reverse``:
    smallest), and those without it when
    ``keep_checkpoints_without_metrics``. ``n`` None: every step is kept.

    ``metric`` names a number of the step's metrics (``"loss"``), or is a
    function of the step's metrics dict returning a number, as Orbax's
    ``get_metric_fn`` (which may also be given by that name). A step whose
    function raises or returns None or NaN counts as one without metrics.
    """
    metric: Union[str, Callable[[dict], float], None] = None
    reverse: bool = False
    n: Optional[int] = None
    keep_checkpoints_without_metrics: bool = True
    get_metric_fn: Optional[Callable[[dict], float]] = None

    def __post_init__(self):
        if (self.metric is None) == (self.get_metric_fn is None):
            raise InvalidArgumentError(
                "BestN: give one of metric (a name or a function) and "
                "get_metric_fn")
        function = self.get_metric_fn or self.metric
        if not isinstance(function, str) and not callable(function):
            raise InvalidArgumentError(
                "BestN: the metric must be a name or a function of the "
                f"metrics, not {type(function).__name__}")

    def _fields(self):
        return {"policy": "BestN", "reverse": self.reverse, "n": self.n,
                "keep_checkpoints_without_metrics":
                    self.keep_checkpoints_without_metrics}

    def to_json(self):
        if not isinstance(self.metric, str):
            raise InvalidArgumentError(
                "BestN with a metric function has no JSON form")
        return dict(self._fields(), metric=self.metric)

    def _to_json(self, functions):
        if isinstance(self.metric, str):
            return self.to_json()
        functions.append(self.get_metric_fn or self.metric)
        return dict(self._fields(), python_metric_fn=len(functions) - 1)


@dataclass(frozen=True)
class AnyPreservationPolicy(PreservationPolicy):
    """Keeps a step any of ``policies`` keeps."""
    policies: Sequence[PreservationPolicy]

    def to_json(self):
        return {"policy": "AnyPreservationPolicy",
                "policies": [p.to_json() for p in self.policies]}

    def _to_json(self, functions):
        return {"policy": "AnyPreservationPolicy",
                "policies": [p._to_json(functions) for p in self.policies]}
