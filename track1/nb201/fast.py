"""Static-graph NAS-Bench-201 training step: the arch is a tensor, not Python control flow.

Why: the single-path NB201 step is bound by kernel launches, not by FLOPs (a few hundred
small kernels per path, 16.7 steps/s at batch 256 on an H100). Here every candidate op of
every edge runs and its output is scaled by the path's 0/1 weight, so one graph serves
every arch: on CUDA the whole step (forward, backward, optimiser update) is captured once
as a CUDA graph and replayed; on CPU the same code runs eagerly (that is what the tests
compare with the plain path).

Several paths of one step share one forward: activations are laid out ``[B, A*C, H, W]``
(path ``a`` owns channels ``a*C .. a*C+C-1``), convolutions are grouped with the shared
weight repeated per path, and every BatchNorm normalises each path's channels with that
path's own batch statistics, exactly as separate forwards would.

The semantics stay those of the single-path supernet (``NB201Supernet`` + ``train_step``
+ ``torch.optim.SGD``), and the tests hold the two equal over random archs and steps:

- an op off every path of the step gets no gradient and no optimiser update: no weight
  decay, no momentum step, no momentum-buffer creation (``MaskedSGD``);
- "off the path" is what autograd would say: an op whose output cannot reach the loss
  (its node feeds only ``none`` edges), and everything before a cell whose output is cut
  from its input (``connected`` false), gets ``None`` gradients in the plain path, so it
  gets no update here either (``gradient_selector``);
- BatchNorm running statistics (and ``num_batches_tracked``) change only for ops that ran
  in some path, once per path, in path order.

Modules: ``track1.nb201.flow`` (what gets a gradient), ``track1.nb201.masked`` (the
every-op forward), here ``MaskedSGD`` and the step.

Supported steps: SPOS (``num_random`` uniform paths, cross-entropy each) and RD-NAS
``reuse`` pair ranking (``hinge`` or ``margin``) on a margin chain, the NB201 bench's two
recipes. Other loss configurations use the plain ``train_step``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager

import torch
import torch.nn.functional as F
from torch import nn

from track1.infra.errors import UserError
from track1.nas.ranking import pair_margin
from track1.nas.step import LossConfig, sampler_view
from track1.nb201.flow import N_EDGES, N_OPS, SELECTOR_SIZE, gradient_selector, parameter_selectors
from track1.nb201.masked import masked_forward


class FastPathError(UserError, ValueError):
    """A configuration the static-graph step does not cover (one line, names it)."""


# ------------------------------------------------------------------------ optimiser
class MaskedSGD:
    """``torch.optim.SGD`` (momentum, nesterov, per-group weight decay, no dampening)
    where each parameter steps only when its mask is 1, as if its ``.grad`` were
    ``None`` otherwise. Parameters and gradients live in one flat buffer per group (the
    module's parameters become views into it), so an update is a handful of kernels
    whatever the number of tensors, and every input is a device tensor (capturable).

    ``optimizer`` supplies the groups and hyper-parameters (lr is read from it at each
    step, so a timm scheduler driving it drives this too); ``sync_state_to`` /
    ``load_state_from`` translate the momentum buffers to and from its ``state``, so
    checkpoints are those of the plain optimiser.
    """

    def __init__(self, optimizer: torch.optim.SGD, names: dict[int, str],
                 selectors: dict[str, int]) -> None:
        self.optimizer = optimizer
        self.groups: list[dict[str, Any]] = []
        for group in optimizer.param_groups:
            if group.get("dampening", 0) or group.get("maximize", False):
                raise FastPathError("the static-graph step supports SGD without dampening "
                                    "or maximize")
            params = list(group["params"])
            if not params:
                continue
            device = params[0].device
            sizes = [p.numel() for p in params]
            flat = torch.cat([p.detach().reshape(-1) for p in params]).contiguous()
            grad = torch.zeros_like(flat)
            sel = torch.cat([torch.full((n,), selectors[names[id(p)]], dtype=torch.long)
                             for p, n in zip(params, sizes)]).to(device)
            offset = 0
            for p, n in zip(params, sizes):
                p.data = flat[offset:offset + n].view(p.shape)
                p.grad = grad[offset:offset + n].view(p.shape)
                offset += n
            self.groups.append({
                "group": group, "params": params, "sizes": sizes, "flat": flat,
                "grad": grad, "sel": sel, "buf": torch.zeros_like(flat),
                "has_buf": torch.zeros(flat.shape, dtype=torch.bool, device=device),
                "momentum": float(group["momentum"]), "nesterov": bool(group["nesterov"]),
                "weight_decay": float(group["weight_decay"])})

    def zero_grad(self) -> None:
        for g in self.groups:
            g["grad"].zero_()

    @torch.no_grad()
    def step(self, selector: torch.Tensor, lrs: torch.Tensor) -> None:
        """One update; ``selector`` is ``gradient_selector``'s vector, ``lrs`` one lr per
        group (device tensors, so a captured graph replays with new values)."""
        for i, g in enumerate(self.groups):
            on = selector[g["sel"]] > 0
            p, d = g["flat"], g["grad"]
            if g["weight_decay"]:
                d = d.add(p, alpha=g["weight_decay"])
            if g["momentum"]:
                buf = g["buf"]
                stepped = torch.where(g["has_buf"], buf * g["momentum"] + d, d)
                buf.copy_(torch.where(on, stepped, buf))
                g["has_buf"].logical_or_(on)
                d = d.add(buf, alpha=g["momentum"]) if g["nesterov"] else buf
            p.copy_(torch.where(on, p - lrs[i] * d, p))

    def lrs(self) -> list[float]:
        return [float(g["group"]["lr"]) for g in self.groups]

    # ---------------------------------------------------------- plain-optimiser state
    def sync_state_to(self, optimizer: torch.optim.SGD | None = None) -> None:
        """Write the momentum buffers into ``optimizer.state`` (as torch's SGD keeps
        them: only for parameters that have stepped) before its ``state_dict()``."""
        optimizer = optimizer or self.optimizer
        for g in self.groups:
            if not g["momentum"]:
                continue
            offset = 0
            for p, n in zip(g["params"], g["sizes"]):
                if bool(g["has_buf"][offset]):
                    optimizer.state[p]["momentum_buffer"] = \
                        g["buf"][offset:offset + n].view(p.shape).clone()
                else:
                    optimizer.state.pop(p, None)
                offset += n

    def load_state_from(self, optimizer: torch.optim.SGD | None = None) -> None:
        """Read the momentum buffers of ``optimizer.state`` (after its
        ``load_state_dict``)."""
        optimizer = optimizer or self.optimizer
        for g in self.groups:
            offset = 0
            for p, n in zip(g["params"], g["sizes"]):
                buf = optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    g["buf"][offset:offset + n].copy_(buf.reshape(-1))
                    g["has_buf"][offset:offset + n] = True
                else:
                    g["buf"][offset:offset + n].zero_()
                    g["has_buf"][offset:offset + n] = False
                offset += n

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor a step writes (for snapshots around CUDA-graph warm-up)."""
        return [t for g in self.groups for t in (g["flat"], g["grad"], g["buf"], g["has_buf"])]


# ------------------------------------------------------------------------ forward
def check_supported(cfg: LossConfig, distributed: bool = False, clip_grad: Any = None) -> None:
    """Raise ``FastPathError`` naming the first setting the static-graph step lacks."""
    if distributed:
        raise FastPathError("engine 'fast' runs in one process (no torchrun/DDP)")
    if clip_grad:
        raise FastPathError("engine 'fast' does not clip gradients: unset optim.clip_grad")
    if cfg.largest or cfg.smallest or cfg.distill:
        raise FastPathError("engine 'fast' covers SPOS and reuse-mode pair ranking: set "
                            "loss.largest, loss.smallest and loss.distill to false")
    if cfg.num_random < 1:
        raise FastPathError("engine 'fast' needs loss.num_random >= 1")
    if cfg.ranking not in ("none", "hinge", "margin"):
        raise FastPathError(f"engine 'fast' has no loss.ranking={cfg.ranking!r} "
                            "(none, hinge, margin)")
    if cfg.ranking != "none" and cfg.ranking_mode != "reuse":
        raise FastPathError("engine 'fast' ranks in loss.ranking_mode 'reuse' only")
    if cfg.teacher_kd:
        raise FastPathError("engine 'fast' has no external-teacher distillation: set "
                            "loss.teacher_kd to 0 or use engine: plain")


class FastNB201Step:
    """Forward, backward and masked SGD update of one NB201 step as one static graph.

    ``step(images, targets, lam)`` draws the step's archs from ``sampler`` exactly as
    ``train_step`` does (so a fast and a plain run of one seed train the same archs),
    writes the arch weights, gradient selector, pair signs, lambda and learning rates
    into one small host tensor, copies it to the device and runs the graph. It returns
    the loss terms as device tensors (no host sync); ``track1.nas.step.terms_to_floats``
    reads them.
    """

    def __init__(self, supernet: nn.Module, optimizer: torch.optim.SGD, cfg: LossConfig,
                 sampler: Any, teacher: Any = None, *,
                 autocast: Callable[[], ContextManager] | None = None,
                 cuda_graph: bool | None = None, distributed: bool = False,
                 clip_grad: Any = None, log: Callable[[str], None] = print) -> None:
        check_supported(cfg, distributed, clip_grad)
        if cfg.ranking != "none" and teacher is None:
            raise FastPathError(f"loss.ranking={cfg.ranking!r} needs a teacher")
        self.supernet, self.cfg, self.sampler, self.teacher = supernet, cfg, sampler, teacher
        self.space = supernet.space
        self.ops = tuple(getattr(self.space, "op_indices", range(N_OPS)))
        self.view = sampler_view(sampler, supernet)   # pair distances, as the plain step
        self.paths = cfg.num_random
        self.ranking = cfg.ranking != "none"
        self.autocast = autocast or contextlib.nullcontext
        self.log = log
        names = {id(p): n for n, p in supernet.named_parameters()}
        self.opt = MaskedSGD(optimizer, names, parameter_selectors(supernet))
        self.device = next(supernet.parameters()).device
        a = self.paths
        # host layout: weights [A*6*5] | selector | sign, active, margin per pair | lam | lrs
        self._n_w = a * N_EDGES * N_OPS
        self._n_pairs = a - 1
        self._size = self._n_w + SELECTOR_SIZE + 3 * self._n_pairs + 1 + len(self.opt.groups)
        pin = self.device.type == "cuda"
        dtype = next(supernet.parameters()).dtype
        self._host = torch.zeros(self._size, dtype=dtype, pin_memory=pin)
        self._inputs = torch.zeros(self._size, dtype=dtype, device=self.device)
        # the pinned host buffer is refilled only once the previous step's copy has run
        self._copied = torch.cuda.Event() if pin else None
        self.cuda_graph = (self.device.type == "cuda") if cuda_graph is None else bool(cuda_graph)
        self._graph = None
        self._static: dict[str, torch.Tensor] = {}

    # --------------------------------------------------------------- host-side draw
    def draw(self) -> list:
        """The step's archs, drawn as ``train_step`` draws its random subnets."""
        reuse = self.ranking
        return (self.sampler.chain(self.paths) if reuse
                else [self.sampler.sample() for _ in range(self.paths)])

    def _fill(self, archs: list, lam: float) -> None:
        h = self._host
        h.zero_()
        w = h[:self._n_w].view(self.paths, N_EDGES, N_OPS)
        for a, arch in enumerate(archs):
            for e, o in enumerate(arch):
                w[a, e, o] = 1.0
        off = self._n_w
        h[off:off + SELECTOR_SIZE] = gradient_selector(archs)
        off += SELECTOR_SIZE
        if self.ranking:
            for i in range(1, len(archs)):
                a, b = archs[i - 1], archs[i]
                pa, pb = self.teacher.scores([a, b])
                if self.cfg.ranking == "hinge":     # relu(lb - la) if P(a) < P(b) else relu(la - lb)
                    sign, active, margin = (1.0 if pa < pb else -1.0), 1.0, 0.0
                else:                               # margin: 0 at a teacher tie
                    sign = 1.0 if pb > pa else (-1.0 if pa > pb else 0.0)
                    active = float(sign != 0.0)
                    margin = pair_margin(self.view.distance(a, b), self.cfg.margin,
                                         self.cfg.margin_per_distance)
                h[off + 3 * (i - 1):off + 3 * i] = torch.tensor([sign, active, margin],
                                                                dtype=torch.float64)
        off += 3 * self._n_pairs
        h[off] = lam
        h[off + 1:] = torch.tensor(self.opt.lrs(), dtype=torch.float64)

    # ------------------------------------------------------------------ the graph
    def _body(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        inp = self._inputs
        a = self.paths
        weights = inp[:self._n_w].view(a, N_EDGES, N_OPS)
        off = self._n_w
        selector = inp[off:off + SELECTOR_SIZE]
        off += SELECTOR_SIZE
        pairs = inp[off:off + 3 * self._n_pairs].view(max(self._n_pairs, 0), 3)
        off += 3 * self._n_pairs
        lam, lrs = inp[off], inp[off + 1:]
        self.opt.zero_grad()
        with self.autocast():
            logits = masked_forward(self.supernet, images, weights, self.ops)
        ce = torch.stack([F.cross_entropy(logits[p].float(), targets,
                                          label_smoothing=self.cfg.label_smoothing)
                          for p in range(a)])
        loss = ce.sum()
        rank = torch.zeros((), dtype=ce.dtype, device=ce.device)
        if self.ranking:
            for i in range(1, a):
                sign, active, margin = pairs[i - 1].to(ce.dtype).unbind()
                pair = F.relu(margin + sign * (ce[i] - ce[i - 1].detach())) * active
                rank = rank + pair.detach()
                loss = loss + lam.to(pair.dtype) * pair  # as the plain step: lam in the loss dtype
        loss.backward()
        self.opt.step(selector, lrs)
        return {"random": ce.detach().sum() / a, "rank": rank}

    def _snapshot(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        tensors = self.opt.tensors() + list(self.supernet.buffers())
        return [(t, t.clone()) for t in tensors]

    def _capture(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        self._static = {"images": images.clone(), "targets": targets.clone()}
        saved = self._snapshot()
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # cuDNN autotuning and allocator warm-up, then undone
                    self._body(self._static["images"], self._static["targets"])
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            for t, copy in saved:
                t.copy_(copy)
            with torch.cuda.graph(graph):
                out = self._body(self._static["images"], self._static["targets"])
        except BaseException:
            torch.cuda.synchronize()
            for t, copy in saved:  # a failed capture leaves the training state as it was
                t.copy_(copy)
            raise
        self._graph, self._static["out"] = graph, out

    def step(self, images: torch.Tensor, targets: torch.Tensor, lam: float,
             archs: list | None = None) -> dict[str, Any]:
        """One training step (every forward, backward and the update). ``archs``
        overrides the sampler's draw (tests)."""
        archs = self.draw() if archs is None else archs
        if self._copied is not None:
            self._copied.synchronize()   # the GPU has read the last step's inputs
        self._fill(archs, lam)
        self._inputs.copy_(self._host, non_blocking=True)
        if self._copied is not None:
            self._copied.record()
        if not self.cuda_graph:
            out = self._body(images, targets)
        else:
            if self._graph is None or images.shape != self._static["images"].shape:
                try:
                    self._capture(images, targets)
                except RuntimeError as e:  # a driver or op that cannot be captured
                    self.log(f"CUDA-graph capture failed ({str(e).splitlines()[0]}); "
                             "the static step runs eagerly")
                    self.cuda_graph = False
                    return self.step(images, targets, lam, archs)
            self._static["images"].copy_(images, non_blocking=True)
            self._static["targets"].copy_(targets, non_blocking=True)
            self._graph.replay()
            out = {k: v.clone() for k, v in self._static["out"].items()}
        self.last_archs = archs
        return {**out, "lambda": float(lam), "forwards": float(self.paths)}

    # -------------------------------------------------------------- checkpointing
    def sync_optimizer_state(self) -> None:
        """Before ``optimizer.state_dict()``: the momentum buffers in torch's layout."""
        self.opt.sync_state_to()

    def load_optimizer_state(self) -> None:
        """After ``optimizer.load_state_dict()``."""
        self.opt.load_state_from()
