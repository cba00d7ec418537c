"""When a ckpt.training.Checkpointer saves a step (Orbax's
``ocp.training.save_decision_policies``). The default saves the first step,
then whenever no save is in flight, and on a preemption notice."""
from dataclasses import dataclass
from typing import Optional, Sequence


class SaveDecisionPolicy:
    """Base of the policies: each says what it is as JSON for ckpt's core."""

    def to_json(self) -> dict:
        raise NotImplementedError


@dataclass(frozen=True)
class ContinuousCheckpointingPolicy(SaveDecisionPolicy):
    """Saves whenever no save is in flight (and, with a minimum interval,
    at least that many seconds after the newest step)."""
    minimum_interval_secs: Optional[float] = None

    def to_json(self):
        return {"policy": "ContinuousCheckpointingPolicy",
                "minimum_interval_secs": self.minimum_interval_secs}


@dataclass(frozen=True)
class FixedIntervalPolicy(SaveDecisionPolicy):
    """Saves the steps that are multiples of ``interval``."""
    interval: int

    def to_json(self):
        return {"policy": "FixedIntervalPolicy", "interval": self.interval}


@dataclass(frozen=True)
class SpecificStepsPolicy(SaveDecisionPolicy):
    """Saves the steps listed."""
    steps: Sequence[int]

    def to_json(self):
        return {"policy": "SpecificStepsPolicy", "steps": list(self.steps)}


@dataclass(frozen=True)
class InitialSavePolicy(SaveDecisionPolicy):
    """Saves when the root has no step yet."""

    def to_json(self):
        return {"policy": "InitialSavePolicy"}


@dataclass(frozen=True)
class PreemptionCheckpointingPolicy(SaveDecisionPolicy):
    """Saves the first step after a preemption notice (SIGTERM with
    handle_preemption_signals, or ckpt.training.request_preemption())."""

    def to_json(self):
        return {"policy": "PreemptionCheckpointingPolicy"}


@dataclass(frozen=True)
class AnySavePolicy(SaveDecisionPolicy):
    """Saves when any of ``policies`` would."""
    policies: Sequence[SaveDecisionPolicy]

    def to_json(self):
        return {"policy": "AnySavePolicy",
                "policies": [p.to_json() for p in self.policies]}
