"""One training step: sandwich rule + in-place distillation + ranking distillation.

docs/REFERENCE.md §3, per step, every backward accumulating into ONE optimiser step:

1. the largest subnet, cross-entropy on labels; its logits are kept, detached;
2. the smallest and ``num_random`` random subnets, soft cross-entropy against the
   largest's softmax (in-place distillation);
3. ranking distillation, weighted by lambda(epoch), in one of two modes:
   - ``extra`` (the reference): ``num_pairs`` margin pairs (or one DiffKendall group
     of ``group_size``) of fresh random subnets, each costing extra forward passes;
   - ``reuse``: the random subnets of step 2 are drawn as a margin chain and ranked
     against each other; their logits already give their cross-entropy, so ranking
     costs no extra forward. In pair mode the earlier subnet's loss is detached (its
     backward has run); the later one carries the pair term.
4. (not in the reference) distillation from a frozen external teacher, once-for-all's
   ``kd_ratio`` (``teacher_kd`` = r > 0; the trainer's ``kd_teacher``): its softmax p_T,
   computed ONCE per step under ``no_grad`` (and the autocast context), is a soft
   target for every subnet of steps 1-2. Each such subnet's loss L (the largest's CE; a
   student's soft CE vs the largest, or its CE when ``distill`` is off) becomes
   ``(1 - r) * L + r * softCE(z, p_T)``, z its logits. With in-place distillation on, a
   student learns ``(1 - r) * softCE(z, p_largest) + r * softCE(z, p_T)`` and the
   largest ``(1 - r) * CE(z, y) + r * softCE(z, p_T)``; r = 1 is pure teacher
   distillation. The ranking terms' CE and the extra-mode ranking forwards are not
   mixed. Once-for-all's ``CE + k * KD`` is this loss with r = k / (1 + k), times
   (1 + k) (scale the lr). The reported ``largest``/``smallest``/``random`` stay the
   unmixed L; ``teacher_kd`` reports the mean softCE(z, p_T) over those subnets (before
   r); ``forwards`` does not count the teacher's forward.

Every term can be switched off: plain sandwich is ``ranking="none"``; SPOS is
``largest=False, smallest=False, num_random=1, distill=False``; ``teacher_kd = 0`` (the
default) is the step without an external teacher, exactly. The caller owns the
optimiser: this function only runs forwards and backwards (``zero_grad`` before,
``optimizer.step`` after). Under DDP ``no_sync`` wraps every forward+backward except the
last one, and the last loss touches every parameter (times 0) so DDP sees a gradient for
each, whatever subnet ran last.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any, Callable, ContextManager, Hashable

import torch
import torch.nn.functional as F
from torch import nn

from track1.nas.ranking import (diff_kendall_loss, hinge_pair_loss, margin_ranking_loss,
                                pair_margin)
from track1.nas.sampler import MarginSampler

RANKING_LOSSES = ("none", "hinge", "margin", "diffkendall")
RANKING_MODES = ("extra", "reuse")


@dataclass
class LossConfig:
    """Which loss terms a step runs (YAML ``loss:`` section)."""

    largest: bool = True             # largest subnet, CE on labels (the distillation teacher)
    smallest: bool = True            # smallest subnet
    num_random: int = 2              # n - 2 random subnets (sandwich n = 4)
    distill: bool = True             # smallest/random: soft CE vs largest (else CE on labels)
    ranking: str = "none"            # none | hinge | margin | diffkendall
    ranking_mode: str = "extra"      # extra (reference, extra forwards) | reuse (no extra forward)
    num_pairs: int = 2               # m pairs per step (extra mode, pair losses)
    group_size: int = 4              # K subnets per DiffKendall group (extra mode)
    margin: float = 0.0              # margin ranking loss: base margin (RD-NAS: 0)
    margin_per_distance: float = 0.0  # ... plus this times the pair's distance (not in the paper)
    kendall_alpha: float = 0.5
    label_smoothing: float = 0.0     # on every cross-entropy against labels (4th place: 0.1)
    teacher_kd: float = 0.0          # r: (1 - r) * loss + r * soft CE vs the external teacher

    def __post_init__(self) -> None:
        from track1.infra.sections import check_flag
        for key in ("largest", "smallest", "distill"):
            check_flag(getattr(self, key), f"loss.{key}")
        if self.ranking not in RANKING_LOSSES:
            raise ValueError(f"loss.ranking must be one of {RANKING_LOSSES}, got {self.ranking!r}")
        if self.ranking_mode not in RANKING_MODES:
            raise ValueError(f"loss.ranking_mode must be one of {RANKING_MODES}, "
                             f"got {self.ranking_mode!r}")
        if self.distill and not self.largest:
            raise ValueError("loss.distill needs loss.largest (the largest subnet is the teacher)")
        if self.num_random < 0 or self.num_pairs < 0:
            raise ValueError("loss.num_random and loss.num_pairs must be >= 0")
        if self.ranking != "none" and self.ranking_mode == "reuse" and self.num_random < 2:
            raise ValueError("reuse mode ranks the sandwich's random subnets: needs num_random >= 2")
        if self.ranking == "diffkendall" and self.ranking_mode == "extra" and self.group_size < 2:
            raise ValueError("loss.group_size must be >= 2 for diffkendall")
        if not 0.0 <= float(self.label_smoothing) < 1.0:
            raise ValueError(f"loss.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        r = self.teacher_kd
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= r <= 1.0:
            raise ValueError(f"loss.teacher_kd must be in [0, 1] (the external teacher's "
                             f"share of each subnet's loss; 0 = off), got {r!r}")
        if r > 0 and not (self.largest or self.smallest or self.num_random):
            raise ValueError("loss.teacher_kd mixes the external teacher into the largest, "
                             "smallest and random subnets' losses: all of them are off")
        if not (self.largest or self.smallest or self.num_random or self.ranking != "none"):
            raise ValueError("every loss term is switched off: nothing to train")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "LossConfig":
        """From a ``loss:`` mapping; an unknown key is refused naming the known ones."""
        from track1.infra.sections import build_section
        return build_section(cls, d, "loss")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    return -(target_probs * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def _ce(logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(logits.float(), targets, label_smoothing=smoothing)


def _touch_all(model: nn.Module) -> torch.Tensor:
    return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0


def sampler_view(sampler: Any, supernet: nn.Module) -> Any:
    """The space a step's archs come from: the sampler's view where it has one, else the
    supernet's. Its largest and smallest are the sandwich's ends (a few-shot part moves
    them into the part) and its ``distance`` is the one the sampler's margin uses (e.g.
    ``hamming`` where the supernet's space measures group distance), so a pair's margin
    is measured as the pair was drawn."""
    return getattr(sampler, "space", None) or supernet.space


class SandwichStep:
    """The forwards and backwards of one step, a method per loss term (module docstring).

    The step's state is its attributes: ``soft`` (the largest's detached softmax, the
    students' target), ``external`` (the external teacher's softmax), ``pending`` (each
    term's detached value, read with one host sync at the end) and ``forwards``. The
    archs are drawn when the step is planned, in a fixed order (random subnets, then the
    extra-mode pairs or group), so a seed gives the same archs whatever the terms do."""

    def __init__(self, model: nn.Module, supernet: nn.Module, images: torch.Tensor,
                 targets: torch.Tensor, cfg: LossConfig, sampler: MarginSampler,
                 teacher: Any = None, lam: float = 1.0, *,
                 no_sync: Callable[[], ContextManager] | None = None,
                 autocast: Callable[[], ContextManager] | None = None, ddp: bool = False,
                 external_teacher: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if cfg.ranking != "none" and teacher is None:
            raise ValueError(f"loss.ranking={cfg.ranking!r} needs a teacher")
        self.model, self.supernet, self.images, self.targets = model, supernet, images, targets
        self.cfg, self.sampler, self.teacher, self.lam = cfg, sampler, teacher, lam
        self.no_sync = no_sync or contextlib.nullcontext
        self.autocast = autocast or contextlib.nullcontext
        self.ddp = ddp
        self.space = sampler_view(sampler, supernet)
        self.ranking = cfg.ranking != "none"
        self.soft: torch.Tensor | None = None
        self.external: torch.Tensor | None = None
        self.pending: list[tuple[str, torch.Tensor]] = []
        self.forwards = 0
        self.r = float(cfg.teacher_kd)
        if self.r > 0:
            if external_teacher is None:
                raise ValueError("loss.teacher_kd > 0 needs an external teacher (kd_teacher)")
            with torch.no_grad():
                with self.autocast():
                    teacher_logits = external_teacher(images)
                self.external = F.softmax(teacher_logits.detach().float(), dim=1)
            self.kd_count = int(cfg.largest) + int(cfg.smallest) + cfg.num_random

    # ------------------------------------------------------------------ helpers
    def forward(self, arch: Hashable, grad: bool = True) -> torch.Tensor:
        self.supernet.set_arch(arch)
        self.forwards += 1
        with torch.set_grad_enabled(grad), self.autocast():
            return self.model(self.images)

    def add(self, name: str, value: torch.Tensor) -> None:
        self.pending.append((name, value.detach()))

    def ce(self, logits: torch.Tensor) -> torch.Tensor:
        return _ce(logits, self.targets, self.cfg.label_smoothing)

    def student_loss(self, logits: torch.Tensor) -> torch.Tensor:
        """Soft CE against the largest's softmax (in-place distillation), else CE."""
        if self.cfg.distill and self.soft is not None:
            return soft_cross_entropy(logits, self.soft)
        return self.ce(logits)

    def teacher_mix(self, logits: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        """``(1 - r) * loss + r * softCE(logits, p_T)``; ``loss`` itself when r = 0."""
        if self.external is None:
            return loss
        kd = soft_cross_entropy(logits, self.external)
        self.add("teacher_kd", kd / self.kd_count)
        return (1.0 - self.r) * loss + self.r * kd

    def pair_loss(self, a: Hashable, b: Hashable, la: torch.Tensor, lb: torch.Tensor
                  ) -> torch.Tensor:
        pa, pb = self.teacher.scores([a, b])
        return _pair_loss(self.cfg, self.space, a, b, la, lb, pa, pb)

    # ---------------------------------------------------------------- the terms
    def largest_term(self) -> torch.Tensor:
        """The largest subnet's CE on labels; its softmax kept for the students."""
        logits = self.forward(self.space.largest())
        self.soft = F.softmax(logits.detach().float(), dim=1)
        loss = self.ce(logits)
        self.add("largest", loss)
        return self.teacher_mix(logits, loss)

    def smallest_term(self) -> torch.Tensor:
        logits = self.forward(self.space.smallest())
        loss = self.student_loss(logits)
        self.add("smallest", loss)
        return self.teacher_mix(logits, loss)

    def random_term(self, randoms: list, i: int, previous: dict[str, Any],
                    reuse: bool) -> torch.Tensor:
        """Random subnet ``i``; in reuse mode also its pair term with subnet ``i - 1``
        (whose detached CE ``previous`` carries)."""
        arch = randoms[i]
        logits = self.forward(arch)
        loss = self.student_loss(logits)
        self.add("random", loss / len(randoms))
        loss = self.teacher_mix(logits, loss)
        if reuse:
            ce = self.ce(logits)
            if i > 0:
                pair = self.pair_loss(randoms[i - 1], arch, previous["ce"], ce)
                self.add("rank", pair)
                loss = loss + self.lam * pair
            previous["ce"] = ce.detach()
        return loss

    def reuse_group_term(self, randoms: list) -> torch.Tensor:
        """Reuse mode with DiffKendall: the random subnets ranked as one group."""
        kd, base, ce = [], [], []
        for arch in randoms:
            logits = self.forward(arch)
            base.append(self.student_loss(logits))
            kd.append(self.teacher_mix(logits, base[-1]))
            ce.append(self.ce(logits))
        kd_sum = torch.stack(kd).sum()
        rank = diff_kendall_loss(torch.stack(ce), self.teacher.scores(randoms),
                                 self.cfg.kendall_alpha)
        self.add("random", (kd_sum if self.external is None else torch.stack(base).sum())
                 / len(kd))
        self.add("rank", rank)
        return kd_sum + self.lam * rank

    def extra_group_term(self, group: list) -> torch.Tensor:
        ce = torch.stack([self.ce(self.forward(a)) for a in group])
        rank = diff_kendall_loss(ce, self.teacher.scores(group), self.cfg.kendall_alpha)
        self.add("rank", rank)
        return self.lam * rank

    def extra_pair_term(self, a: Hashable, b: Hashable) -> torch.Tensor:
        # the hinge detaches La: its forward needs no graph
        la = self.ce(self.forward(a, grad=self.cfg.ranking != "hinge"))
        lb = self.ce(self.forward(b))
        pair = self.pair_loss(a, b, la, lb)
        self.add("rank", pair)
        return self.lam * pair

    # --------------------------------------------------------------------- plan
    def plan(self) -> list[Callable[[], torch.Tensor]]:
        """The step's terms in order, each a callable returning the loss to backward; the
        archs are drawn here."""
        cfg = self.cfg
        jobs: list[Callable[[], torch.Tensor]] = []
        if cfg.largest:
            jobs.append(self.largest_term)
        if cfg.smallest:
            jobs.append(self.smallest_term)
        reuse = self.ranking and cfg.ranking_mode == "reuse"
        randoms = (self.sampler.chain(cfg.num_random) if reuse
                   else [self.sampler.sample() for _ in range(cfg.num_random)])
        if reuse and cfg.ranking == "diffkendall":
            jobs.append(lambda: self.reuse_group_term(randoms))
        else:
            previous: dict[str, Any] = {}
            jobs += [lambda i=i: self.random_term(randoms, i, previous, reuse)
                     for i in range(len(randoms))]
        if self.ranking and cfg.ranking_mode == "extra":
            if cfg.ranking == "diffkendall":
                group = self.sampler.chain(cfg.group_size)
                jobs.append(lambda: self.extra_group_term(group))
            else:
                jobs += [lambda a=a, b=b: self.extra_pair_term(a, b)
                         for a, b in self.sampler.pairs(cfg.num_pairs)]
        return jobs

    def run(self) -> dict[str, float]:
        """Every forward and backward of the step; each term's value (floats, summed in
        the order they arose), ``lambda`` and ``forwards``."""
        jobs = self.plan()
        for k, job in enumerate(jobs):
            last = k == len(jobs) - 1
            with (contextlib.nullcontext() if last else self.no_sync()):
                loss = job()
                if last and self.ddp:
                    loss = loss + _touch_all(self.model)
                loss.backward()
        terms: dict[str, float] = {}
        values = (torch.stack([v.float() for _, v in self.pending]).tolist()
                  if self.pending else [])
        for (name, _), value in zip(self.pending, values):
            terms[name] = terms.get(name, 0.0) + value
        terms["lambda"] = float(self.lam)
        terms["forwards"] = float(self.forwards)
        return terms


def train_step(model: nn.Module, supernet: nn.Module, images: torch.Tensor,
               targets: torch.Tensor, cfg: LossConfig, sampler: MarginSampler,
               teacher: Any = None, lam: float = 1.0, *,
               no_sync: Callable[[], ContextManager] | None = None,
               autocast: Callable[[], ContextManager] | None = None,
               ddp: bool = False,
               external_teacher: Callable[[torch.Tensor], torch.Tensor] | None = None
               ) -> dict[str, float]:
    """Run every forward/backward of one step; returns each loss term (floats) and the
    number of forward passes. ``model`` is what runs the forward (the supernet itself,
    or its DDP wrapper); ``supernet`` receives ``set_arch``. ``external_teacher``
    (images -> logits, frozen) gives the soft targets of ``cfg.teacher_kd``; it is not
    called when ``cfg.teacher_kd`` is 0."""
    return SandwichStep(model, supernet, images, targets, cfg, sampler, teacher, lam,
                        no_sync=no_sync, autocast=autocast, ddp=ddp,
                        external_teacher=external_teacher).run()


def terms_to_floats(terms: dict[str, Any]) -> dict[str, float]:
    """Loss terms as floats: device tensors (a static-graph step keeps them on the
    device to avoid a host sync per step) are read with one host transfer."""
    keys = [k for k, v in terms.items() if isinstance(v, torch.Tensor)]
    values = torch.stack([terms[k].detach().float() for k in keys]).tolist() if keys else []
    out = {k: float(v) for k, v in terms.items() if not isinstance(v, torch.Tensor)}
    out.update(zip(keys, values))
    return out


def _pair_loss(cfg: LossConfig, space: Any, a: Hashable, b: Hashable, la: torch.Tensor,
               lb: torch.Tensor, pa: float, pb: float) -> torch.Tensor:
    if cfg.ranking == "hinge":
        return hinge_pair_loss(la, lb, pa, pb)
    margin = pair_margin(space.distance(a, b), cfg.margin, cfg.margin_per_distance)
    return margin_ranking_loss(la, lb, pa, pb, margin)
