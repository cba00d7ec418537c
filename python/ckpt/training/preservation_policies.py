"""Which steps a ckpt.training.Checkpointer keeps (Orbax's
``ocp.training.preservation_policies``). A step is kept when any policy
given keeps it; the newest step is always kept."""
from dataclasses import dataclass
from typing import Optional, Sequence


class PreservationPolicy:
    """Base of the policies: each says what it is as JSON for ckpt's core,
    which records it in the root (``ckpt ls --keep`` shows it)."""

    def to_json(self) -> dict:
        raise NotImplementedError


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
    """Keeps the ``n`` best steps by the metric named ``metric`` (largest
    first; ``reverse``: smallest), and those without metrics when
    ``keep_checkpoints_without_metrics``. ``n`` None: every step with the
    metric."""
    metric: str
    reverse: bool = False
    n: Optional[int] = None
    keep_checkpoints_without_metrics: bool = True

    def to_json(self):
        return {"policy": "BestN", "metric": self.metric,
                "reverse": self.reverse, "n": self.n,
                "keep_checkpoints_without_metrics":
                    self.keep_checkpoints_without_metrics}


@dataclass(frozen=True)
class AnyPreservationPolicy(PreservationPolicy):
    """Keeps a step any of ``policies`` keeps."""
    policies: Sequence[PreservationPolicy]

    def to_json(self):
        return {"policy": "AnyPreservationPolicy",
                "policies": [p.to_json() for p in self.policies]}
