"""BN re-calibration is exact whatever the chunking (issue 20, item 1): the statistics a
re-calibrated BN keeps are those of the whole calibration set, as one train-mode forward
of the set as a single batch leaves them, for any chunk sizes, in the plain scorer, the
prefix scorer (Track 1 evaluate and search) and the fast NB201 scorer."""
from __future__ import annotations

import copy

import pytest
import torch

from track1.data.decode import normalize
from track1.scoring.engine import SubnetScorer
from track1.scoring.bn import (PooledStats, bn_layers, recalibrate, reset_bn_statistics,
                                set_bn_train)
from track1.nb201.supernet import NB201Supernet
from track1.resnet48.supernet import ResNet48Supernet


def _images(n: int, seed: int, size: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    # sorted by brightness: consecutive chunks differ in distribution, as chunks of
    # class-sorted images do
    return x[x.float().mean((1, 2, 3)).argsort()]


def _nb201(seed: int = 0) -> NB201Supernet:
    torch.manual_seed(seed)
    net = NB201Supernet(num_classes=4, C=4, N=1)
    with torch.no_grad():
        for m in bn_layers(net):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
    net.set_arch((3, 2, 3, 1, 4, 3))
    return net


def _stats(net) -> list[torch.Tensor]:
    return [t.clone() for bn in bn_layers(net) for t in (bn.running_mean, bn.running_var)]


def _train_mode_one_batch(net, x: torch.Tensor):
    """The definition: one train-mode forward of the whole set, momentum None."""
    ref = copy.deepcopy(net)
    reset_bn_statistics(ref)
    set_bn_train(ref, True)
    with torch.no_grad():
        ref(x)
    ref.eval()
    return ref


def test_pooled_stats_equal_the_concatenation():
    g = torch.Generator().manual_seed(0)
    chunks = [torch.randn(k, 3, generator=g) * s + m for k, s, m in ((7, 1.0, 0.0),
                                                                    (30, 2.0, 3.0), (3, 0.5, -4.0))]
    pooled = PooledStats()
    for c in chunks:
        var, mean = torch.var_mean(c, dim=0, unbiased=False)
        pooled.add(mean, var, len(c))
    whole = torch.cat(chunks)
    torch.testing.assert_close(pooled.mean.float(), whole.mean(0))
    torch.testing.assert_close(pooled.var(unbiased=True).float(), whole.var(0, unbiased=True))
    assert pooled.n == 40


@pytest.mark.parametrize("make", [_nb201, lambda: ResNet48Supernet(num_classes=4)],
                         ids=["nb201", "resnet48"])
def test_one_chunk_is_one_train_mode_batch(make):
    net = make().eval()
    x = normalize(_images(24, 1, size=32 if isinstance(net, ResNet48Supernet) else 8))
    ref = _train_mode_one_batch(net, x)
    c = recalibrate(net, [x])
    assert (c.chunks, c.sweeps, c.converged) == (1, 1, True)
    for a, b in zip(_stats(net), _stats(ref)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_uneven_chunks_equal_one_chunk():
    """Chunks of 7, 30 and 3 brightness-sorted images: the same statistics and the same
    predictions as one chunk. Averaging chunk means and variances with equal weight (and
    so missing the spread between chunks), or stopping after the first sweep, fails."""
    net = _nb201(1).eval()
    x = normalize(_images(40, 2))
    evals = normalize(_images(30, 3))
    one = copy.deepcopy(net)
    recalibrate(one, [x])
    c = recalibrate(net, [x[:7], x[7:37], x[37:]], tol=1e-7)
    assert c.chunks == 3 and c.sweeps > 2 and c.converged
    for a, b in zip(_stats(net), _stats(one)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(net(evals), one(evals), rtol=1e-4, atol=1e-4)
    first = copy.deepcopy(net)
    c1 = recalibrate(first, [x[:7], x[7:37], x[37:]], max_sweeps=1)
    assert c1.sweeps == 1 and not c1.converged            # the first sweep alone is not exact
    assert max((a - b).abs().max() for a, b in zip(_stats(first), _stats(one))) > 1e-3


def test_scorer_does_not_depend_on_calibration_chunks():
    """Track 1's plain and prefix scorers, one chunk against uneven ones: same scores."""
    from track1.scoring.prefix import PrefixScorer
    from track1.resnet48.official import load_arch_list
    torch.manual_seed(0)
    net = ResNet48Supernet(num_classes=4).eval()
    calib = _images(40, 4, size=32)
    g = torch.Generator().manual_seed(5)
    evals = torch.randint(0, 256, (30, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 4, (30,), generator=g)
    codes = list(load_arch_list(validate=False).values())[:3]
    results = {}
    for chunk in (40, 17):
        with SubnetScorer(net, evals, labels, calib, batch_size=11, calib_batch_size=chunk,
                          device="cpu") as scorer:
            plain = [(scorer.score(c), scorer.last.loss) for c in codes]
            prefix = {k: (acc, scorer.last.loss) for k, _, acc in
                      PrefixScorer(scorer, cache_bytes=10 ** 9).score_many(
                          [(c, c) for c in codes])}
            stats = scorer.calibration_stats()
        results[chunk] = plain
        for c, (acc, loss) in zip(codes, plain):
            assert prefix[c][0] == acc and prefix[c][1] == pytest.approx(loss, rel=1e-4)
        assert stats["calib_chunks"] == (1 if chunk == 40 else 3)
        assert stats["calib_unconverged"] == 0
    for (a1, l1), (a2, l2) in zip(results[40], results[17]):
        assert a1 == a2 and l1 == pytest.approx(l2, rel=1e-4)
