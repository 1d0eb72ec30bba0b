"""The many-archs-per-pass NB201 scorer equals the plain one-arch scorer."""
from __future__ import annotations

import random

import pytest
import torch

from track1.scoring.engine import SubnetScorer
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
        ref = [(plain.score(a), plain.last.loss, plain.last.acc_halves) for a in archs]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = FastNB201Scorer(net, images, labels, calib, archs_per_pass=5, **kw)
    got = fast.evaluate_many(archs)
    for arch, score, (racc, rloss, rhalves) in zip(archs, got, ref):
        # float32 on both sides, BN computed by hand in both (by different expressions)
        assert score.loss == pytest.approx(rloss, rel=1e-5), arch
        assert score.acc == racc, arch
        assert score.acc_halves == rhalves, arch
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
        for s1, s2 in zip(results[0], r):
            assert s1.acc == s2.acc and s1.loss == pytest.approx(s2.loss, rel=1e-6)


def _sorted_by_brightness(images: torch.Tensor) -> torch.Tensor:
    """Chunks of these differ in distribution, as chunks of class-sorted images do."""
    return images[images.float().mean((1, 2, 3)).argsort()]


def test_fast_scorer_calibration_does_not_depend_on_chunking():
    """One chunk and uneven chunks of brightness-sorted images give the same scores: the
    whole set's statistics either way (equal-weight chunk averages did not)."""
    net = _trained_looking_net(2)
    images, labels = _images(30, 6)
    calib = _sorted_by_brightness(_images(40, 7)[0])
    archs = [(3,) * 6, (1, 2, 3, 4, 3, 2)] + random.Random(1).sample(list(all_archs()), 6)
    runs = [FastNB201Scorer(net, images, labels, calib, archs_per_pass=4, batch_size=9,
                            calib_batch_size=c, device="cpu", amp=False) for c in (40, 17)]
    one, chunked = (r.evaluate_many(archs) for r in runs)
    assert runs[1].calib_sweeps > runs[1].calibrations   # chunked: refinement sweeps ran
    for a, b in zip(one, chunked):
        assert a.acc == b.acc and a.loss == pytest.approx(b.loss, rel=1e-4)
