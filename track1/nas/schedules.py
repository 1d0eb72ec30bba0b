"""lambda(epoch) schedules weighting the ranking-distillation term (docs/REFERENCE.md §3).

``epoch`` is fractional (epoch + step / steps_per_epoch) so ramps move every step.
PGONAS found the warm-up ``min(2, e / 10)`` best: the ranking term stays small while
the shared weights are still random, and grows once the losses mean something.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

Schedule = Callable[[float], float]


def constant(value: float = 1.0) -> Schedule:
    return lambda epoch: float(value)


def warmup(cap: float = 2.0, epochs_per_unit: float = 10.0) -> Schedule:
    """``min(cap, epoch / epochs_per_unit)``: the PGONAS default is min(2, e/10)."""
    return lambda epoch: float(min(cap, epoch / epochs_per_unit))


def sine(total_epochs: float, amplitude: float = 2.0, frequency: float = 0.8) -> Schedule:
    """``amplitude * sin(frequency * pi * e / E)``: rises, peaks at 62.5% of training
    (frequency 0.8), then eases off."""
    if total_epochs <= 0:
        raise ValueError("sine schedule needs total_epochs > 0")
    return lambda epoch: float(amplitude * math.sin(frequency * math.pi * epoch / total_epochs))


def multistage(milestones: Sequence[float], values: Sequence[float]) -> Schedule:
    """Piecewise constant: ``values[i]`` from ``milestones[i-1]`` (0 for i = 0) on;
    ``len(values) == len(milestones) + 1``."""
    milestones, values = list(milestones), list(values)
    if len(values) != len(milestones) + 1:
        raise ValueError("multistage needs len(values) == len(milestones) + 1")
    if milestones != sorted(milestones):
        raise ValueError("multistage milestones must be increasing")

    def f(epoch: float) -> float:
        i = sum(epoch >= m for m in milestones)
        return float(values[i])
    return f


def make_schedule(name: str, total_epochs: float, **options) -> Schedule:
    """Schedule by config name: constant | warmup | sine | multistage."""
    if name == "constant":
        return constant(options.get("value", 1.0))
    if name == "warmup":
        return warmup(options.get("cap", 2.0), options.get("epochs_per_unit", 10.0))
    if name == "sine":
        return sine(total_epochs, options.get("amplitude", 2.0), options.get("frequency", 0.8))
    if name == "multistage":
        milestones, values = options.get("milestones"), options.get("values")
        return multistage([total_epochs / 3, 2 * total_epochs / 3] if milestones is None
                          else milestones, [0.0, 1.0, 2.0] if values is None else values)
    raise ValueError(f"unknown lambda schedule {name!r}; choose constant, warmup, sine, multistage")
