"""AZ-NAS (Lee & Ham, CVPR 2024): four training-free views of a network, aggregated by
rank over the set of archs being compared.

On a copy of the network, re-initialised (Kaiming normal, fan-in, for conv / linear;
BN weight 1, bias 0) and fed a batch of Gaussian noise in train mode, the outputs of its
blocks (the stem and every cell or residual block, ``feature_blocks()``) give:

- **expressivity**: per block, the entropy of the normalised eigenvalues of the channel
  covariance of its output (how isotropic the features are), summed over blocks;
- **progressivity**: the smallest increase of that entropy from one block to the next;
- **trainability**: per pair of consecutive blocks, the largest singular value s of the
  estimated Jacobian between them (a Rademacher vector back-propagated from the output
  to the input, correlated with it), scored -s - 1/s + 2 (best at s = 1), averaged;
- **complexity**: FLOPs (counted exactly elsewhere: ``track1.proxies.flops``).

The AZ-NAS score of an arch in a set of N is sum over the four of log(rank / N) (ranks
ascending, ties averaged): a product of rank fractions that punishes being last on any
one view. It depends on the set, so ``components`` scores one network, ``aggregate``
ranks a set, and ``against_reference`` ranks archs against a fixed reference set (what
the ranking teacher uses: its pairs are too small a set to rank by). Computed in float64
with eigenvalues clamped at 0 (the authors' float32 code can take the log of a slightly
negative eigenvalue and lose the arch as NaN).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from track1.infra.ranks import average_ranks, below_in

NAME = "az_nas"
COMPONENTS = ("expressivity", "progressivity", "trainability")
#: the views AZ-NAS aggregates: its three components and the FLOPs proxy
VIEWS = (*COMPONENTS, "flops")
#: how caches (proxy reports, the teacher, proxy-cache) keep them per arch
CACHED = (*(f"az_{k}" for k in COMPONENTS), "flops")


def views(cached: Mapping[str, float]) -> dict[str, float]:
    """An arch's views from its cached fields (``CACHED``)."""
    return {k: cached[f"az_{k}"] for k in COMPONENTS} | {"flops": cached["flops"]}


def feature_blocks(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are the network's successive features."""
    blocks = getattr(model, "feature_blocks", None)
    if blocks is None:
        raise ValueError(f"az_nas needs a network that names its blocks (feature_blocks()); "
                         f"{type(model).__name__} does not")
    return list(blocks())


def reinitialise(net: nn.Module) -> None:
    """Kaiming normal (fan-in, ReLU gain) for conv / linear weights, zero biases; BN
    affine weight 1 and bias 0: the authors' initialisation."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def isotropy(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of a B x C x H x W
    map (images and positions are the observations; a B x C output: the images) -- NaN
    when the map is constant: no direction at all."""
    f = feature.detach().to(torch.float64)
    c = f.shape[1]
    rows = f.permute(0, 2, 3, 1).reshape(-1, c) if f.dim() == 4 else f.reshape(f.shape[0], -1)
    rows = rows - rows.mean(dim=0, keepdim=True)
    # fewer observations than channels: the n x n Gram matrix has the covariance's
    # nonzero eigenvalues, and its zeros add nothing to the entropy
    gram = rows @ rows.t() if rows.shape[0] < c else rows.t() @ rows
    eig = torch.linalg.eigvalsh(gram / rows.shape[0]).clamp(min=0.0)
    if float(eig.sum()) <= 0.0:
        return math.nan
    p = eig / eig.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())


def jacobian_score(f_in: torch.Tensor, f_out: torch.Tensor, generator: torch.Generator) -> float:
    """-s - 1/s + 2 for the largest singular value s of the Jacobian estimate between
    two consecutive features (-inf for an identity block)."""
    g_out = (torch.randint(0, 2, f_out.shape, generator=generator).to(f_out) - 0.5) * 2
    g_in = None
    if f_out.requires_grad and f_in.requires_grad:
        (g_in,) = torch.autograd.grad(f_out, f_in, g_out, retain_graph=True, allow_unused=True)
    if g_in is None:  # the output does not depend on the input (a cell of 'none' edges)
        g_in = torch.zeros_like(f_in)
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    if g_in.shape[2:] != g_out.shape[2:]:
        g_in = F.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
    n = g_out.shape[0] * g_out.shape[2] * g_out.shape[3]
    a = g_in.to(torch.float64).permute(0, 2, 3, 1).reshape(n, -1)
    b = g_out.to(torch.float64).permute(0, 2, 3, 1).reshape(n, -1)
    s = largest_singular_value_of_product(a, b) / n
    return -s - 1.0 / (s + 1e-6) + 2.0


def largest_singular_value_of_product(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest singular value of a^T b for n x p and n x q matrices. With n below
    both p and q it comes from an n x n matrix: a^T = Q1 R1 and b^T = Q2 R2 (reduced QR,
    orthonormal Q), so a^T b = Q1 (R1 R2^T) Q2^T has the singular values of R1 R2^T."""
    n = a.shape[0]
    if n < min(a.shape[1], b.shape[1]):
        r1 = torch.linalg.qr(a.t()).R
        r2 = torch.linalg.qr(b.t()).R
        return float(torch.linalg.svdvals(r1 @ r2.t()).max())
    return float(torch.linalg.svdvals(a.t() @ b).max())


def components(model: nn.Module, inputs: torch.Tensor, *, seed: int | None = None,
               batch: int = 64, random_inputs: bool = True,
               in_place: bool = False) -> dict[str, float]:
    """Expressivity, progressivity and trainability of one network (the authors' NB201
    protocol: ``batch`` Gaussian images at ``inputs``' resolution; ``random_inputs=False``
    uses ``inputs`` themselves). The caller's model is not modified, unless ``in_place``:
    then it is re-initialised and scored itself, with no copy (for a network built only
    to be scored; the values are the same). RNG state kept."""
    feature_blocks(model)  # a network without named blocks fails here, before the copy
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0 if seed is None else int(seed))
        net = (model if in_place else copy.deepcopy(model)).to(inputs.device).train()
        reinitialise(net)
        x = (torch.randn(batch, *inputs.shape[1:], device=inputs.device) if random_inputs
             else inputs)
    blocks = feature_blocks(net)
    feats: list[torch.Tensor] = []
    handles = [b.register_forward_hook(lambda m, i, o: feats.append(o)) for b in blocks]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    if len(feats) < 2:
        raise ValueError(f"az_nas needs at least 2 blocks; {type(model).__name__} gave {len(feats)}")
    iso = [isotropy(f) for f in feats]
    if any(math.isnan(v) for v in iso):
        expressivity = progressivity = -math.inf
    else:
        expressivity = sum(iso)
        progressivity = min(b - a for a, b in zip(iso, iso[1:]))
    g = torch.Generator().manual_seed(0 if seed is None else int(seed))
    scores = [jacobian_score(feats[i - 1], feats[i], g) for i in reversed(range(1, len(feats)))]
    trainability = sum(scores) / len(scores)
    if math.isnan(trainability):
        trainability = -math.inf
    return {"expressivity": expressivity, "progressivity": progressivity,
            "trainability": trainability}


def rank_fractions(values: Sequence[float]) -> list[float]:
    """log(rank / N) with ascending 1-based average ranks (-inf ranks first)."""
    n = len(values)
    return [math.log((r + 1.0) / n) for r in average_ranks(values)]


def aggregate(rows: Sequence[Mapping[str, float]], views: Sequence[str] = VIEWS) -> list[float]:
    """The AZ-NAS score of every row of a set: sum over ``views`` of log(rank / N)."""
    if not rows:
        return []
    missing = [v for v in views if v not in rows[0]]
    if missing:
        raise ValueError(f"az_nas.aggregate: rows lack {missing}; each needs {list(views)}")
    total = [0.0] * len(rows)
    for view in views:
        for i, r in enumerate(rank_fractions([float(row[view]) for row in rows])):
            total[i] += r
    return total


def against_reference(rows: Sequence[Mapping[str, float]],
                      reference: Sequence[Mapping[str, float]],
                      views: Sequence[str] = VIEWS) -> list[float]:
    """AZ-NAS scores of ``rows`` each ranked against a fixed ``reference`` set of archs:
    per view, the row's average rank among the reference values and itself, over the
    set's size, logged and summed. A per-arch score (the same arch scores the same in any
    group), so a teacher comparing pairs gets AZ-NAS's ranking of the space, not the
    coarse two-arch vote of ``aggregate`` on a pair."""
    if not reference:
        raise ValueError("az_nas.against_reference needs a non-empty reference set")
    columns = {v: sorted(float(r[v]) for r in reference) for v in views}
    n = len(reference) + 1
    return [sum(math.log((below_in(float(row[v]), columns[v]) + 1.0) / n) for v in views)
            for row in rows]


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """AZ-NAS ranks a set, not one network: use ``components`` and ``aggregate``."""
    raise TypeError("az_nas scores a set of archs: call az_nas.components per arch and "
                    "az_nas.aggregate over the set")
