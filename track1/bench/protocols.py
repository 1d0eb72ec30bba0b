"""Named NAS-Bench-201 bench protocols: what is trained, on which images, at what budget,
and which archs are scored against the ground truth.

``paper`` is the RD-NAS authors' one-shot protocol as their code runs it (PicoNAS,
``examples/rdnas/`` and ``piconas/models/nasbench201/oneshot_nasbench201.py``, read
2026-12-01 and 2026-12-03): 4 candidate ops (``none`` commented out, 4,096 archs), cell
and reduction BN without affine parameters, dropout 0.1 before the classifier; training
on one 25k half of the CIFAR-10 training set (``cifar10-valid``) at batch 512 for 250
epochs, SGD lr 0.025, momentum 0.9 (no Nesterov), weight decay 5e-4, cosine to 1e-3
stepped per epoch, no warm-up; scored on the other half. The official split file is not
in our data, so the halves are a seeded permutation. The authors evaluate 20-50 fresh
random archs with train-mode BN on augmented batches; we score a FIXED set of none-free
archs on fixed held-out images with re-calibrated BN (stated in every summary).

``paper5`` is the same recipe on all 5 ops (15,625 archs): the harder setting, whose
summaries also report the none-free subset. ``quick`` is the bench's earlier default (5
ops, the whole training set, the CIFAR-10 test split), kept for CPU smoke runs and to
reproduce the figures committed before the protocols existed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from track1.nb201.opnames import PAPER_OPS


@dataclass(frozen=True)
class Protocol:
    """One bench protocol. Learning rates are per 256 images (the trainer scales them by
    batch / 256), so ``lr`` 0.0125 at batch 512 is the authors' 0.025."""

    name: str
    ops: tuple[str, ...] | None            # candidate ops; None = all 5
    train_fraction: float | None           # train on a seeded part of CIFAR-10 train
    split_seed: int                        # the part's seed (fixed: the same for every run)
    eval_source: str                       # "held_out" (the other part) | "val" (test split)
    archs: int                             # size of the fixed scored set
    none_free: bool                        # draw the scored set among none-free archs only
    eval_images: int
    calib_images: int
    epochs: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_epochs: float | None            # None: 1 epoch if epochs >= 3, else 0
    sched_per: str
    nesterov: bool
    weight_decay: float
    bn_affine: bool
    dropout: float
    fractions: tuple[float, ...]           # budget fractions at which the set is scored
    lam: dict[str, Any] = field(default_factory=dict)  # default lambda schedule of RD-NAS

    def model(self) -> dict[str, Any]:
        out: dict[str, Any] = {"num_classes": 10, "C": 16, "N": 5}
        if self.ops is not None:
            out["ops"] = list(self.ops)
        if not self.bn_affine:
            out["bn_affine"] = False
        if self.dropout:
            out["dropout"] = self.dropout
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ops"] = list(self.ops) if self.ops is not None else "all"
        d["fractions"] = list(self.fractions)
        return d

    def with_overrides(self, **changes: Any) -> "Protocol":
        """This protocol with command-line overrides (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PAPER = Protocol(
    name="paper", ops=PAPER_OPS, train_fraction=0.5, split_seed=0, eval_source="held_out",
    archs=1000, none_free=True, eval_images=5000, calib_images=512, epochs=250,
    batch_size=512, lr=0.0125, min_lr=0.0005, warmup_epochs=0.0, sched_per="epoch",
    nesterov=False, weight_decay=5e-4, bn_affine=False, dropout=0.1,
    fractions=(0.1, 0.25, 0.5, 1.0),
    # the authors' NB201 code at the paper's time: lambda = 2 sin(0.8 pi e / E)
    lam={"schedule": "sine", "amplitude": 2.0, "frequency": 0.8})

PROTOCOLS: dict[str, Protocol] = {
    "paper": PAPER,
    "paper5": replace(PAPER, name="paper5", ops=None, none_free=False),
    "quick": Protocol(
        name="quick", ops=None, train_fraction=None, split_seed=0, eval_source="val",
        archs=1000, none_free=False, eval_images=1000, calib_images=512, epochs=3,
        batch_size=64, lr=0.1, min_lr=0.0, warmup_epochs=None, sched_per="step",
        nesterov=True, weight_decay=5e-4, bn_affine=True, dropout=0.0, fractions=(1.0,),
        # lambda warms up over the first 30% of the run (PGONAS: min(2, e / 10) of 70)
        lam={"schedule": "warmup", "cap": 2.0, "epochs_per_unit": "0.15E"}),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown bench protocol {name!r}; choose from {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]


def resolve_lambda(lam: dict[str, Any], epochs: float) -> dict[str, Any]:
    """Lambda options with run-length placeholders resolved: ``"0.15E"`` = 0.15 x epochs."""
    out = {}
    for k, v in lam.items():
        if isinstance(v, str) and v.endswith("E"):
            v = max(float(v[:-1]) * epochs, 1e-6)
        out[k] = v
    return out
