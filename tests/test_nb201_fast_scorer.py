"""The many-archs-per-pass NB201 scorer equals the plain one-arch scorer."""
from __future__ import annotations

import random

import pytest
import torch

from track1.evaluate import SubnetScorer
from track1.nb201.fast_scorer import FastNB201Scorer
from track1.nb201.space import all_archs
from track1.nb201.supernet import NB201Supernet


def _trained_looking_net(seed: int = 0, **kw) -> NB201Supernet:
    torch.manual_seed(seed)
    net = NB201Supernet(num_classes=4, C=4, N=1, **kw)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
    return net


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8),
            torch.randint(0, 4, (n,), generator=g))


CUT = (0, 3, 3, 0, 3, 0)


@pytest.mark.parametrize("bn_mode", ["recalibrate", "batch", "stored"])
@pytest.mark.parametrize("affine", [True, False])
def test_fast_scorer_equals_plain_scorer(bn_mode, affine):
    net = _trained_looking_net(bn_affine=affine)
    images, labels = _images(20, 1)
    calib, _ = _images(24, 2)
    archs = [CUT, (0,) * 6, (3,) * 6] + random.Random(3).sample(list(all_archs()), 9)
    kw = dict(bn_mode=bn_mode, batch_size=7, calib_batch_size=10, device="cpu", amp=False)
    with SubnetScorer(net, images, labels, calib, channels_last=False, **kw) as plain:
        ref = [plain.evaluate(a) for a in archs]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = FastNB201Scorer(net, images, labels, calib, archs_per_pass=5, **kw)
    got = fast.evaluate_many(archs)
    for arch, (acc, loss), (racc, rloss) in zip(archs, got, ref):
        # float32 on both sides; BN is computed by hand here and by F.batch_norm there
        assert loss == pytest.approx(rloss, rel=1e-5), arch
        assert acc == racc, arch
    for k, v in net.state_dict().items():   # scoring never touches the supernet
        assert torch.equal(v, before[k]), k


def test_pass_size_does_not_change_results():
    net = _trained_looking_net(1)
    images, labels = _images(12, 4)
    calib, _ = _images(16, 5)
    archs = random.Random(0).sample(list(all_archs()), 7)
    results = [FastNB201Scorer(net, images, labels, calib, archs_per_pass=p, batch_size=5,
                               calib_batch_size=8, device="cpu", amp=False).evaluate_many(archs)
               for p in (1, 3, 7)]
    for r in results[1:]:   # float32: a conv over more images may block its sums differently
        for (a1, l1), (a2, l2) in zip(results[0], r):
            assert a1 == a2 and l1 == pytest.approx(l2, rel=1e-6)
