"""Convs on 1x1 / 2x2 maps as one matrix product: same values and gradients as F.conv2d."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from track1.ops.dynamic_ops import DynamicConv2d
from track1.ops.tiny_map_conv import _tap_index, conv2d_dense, dense_conv_matrix, use_dense_form


@pytest.mark.parametrize("h,w,k,stride,padding", [
    (1, 1, 3, 1, 1), (2, 2, 3, 1, 1), (2, 2, 3, 2, 1), (1, 1, 3, 2, 1), (2, 1, 3, 1, 1),
    (1, 2, 5, 1, 2), (3, 3, 7, 2, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_equal_conv2d(h, w, k, stride, padding, channels_last):
    gen = torch.Generator().manual_seed(h * 100 + w * 10 + k + stride)
    full = torch.randn(24, 20, k, k, generator=gen)
    weight = full[:13, :11].clone().requires_grad_(True)  # a sliced, elastic-width kernel
    x = torch.randn(5, 11, h, w, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    expected = F.conv2d(x, weight, None, stride, padding)
    got = conv2d_dense(x, weight, stride, padding)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert got.is_contiguous(memory_format=fmt)  # keeps the input's layout
    g = torch.randn(expected.shape, generator=gen)
    gw, gx = torch.autograd.grad(expected, (weight, x), g)
    dw, dx = torch.autograd.grad(got, (weight, x), g)
    assert torch.allclose(dw, gw, atol=1e-4, rtol=1e-5) and torch.allclose(dx, gx, atol=1e-4, rtol=1e-5)


def test_matrix_links_each_position_pair_through_the_right_tap():
    weight = torch.arange(9.0).view(1, 1, 3, 3)  # tap (kh, kw) holds 3*kh + kw
    matrix, ho, wo = dense_conv_matrix(weight, 2, 2, 1, 1)
    assert (ho, wo) == (2, 2)
    # output (0, 0) sees input (i, j) through tap (i + 1, j + 1); output (1, 1) through (i, j)
    assert matrix[0].tolist() == [4.0, 5.0, 7.0, 8.0]
    assert matrix[3].tolist() == [0.0, 1.0, 3.0, 4.0]


def test_dense_form_only_where_it_does_no_more_arithmetic():
    assert use_dense_form(1, 1, 3) and use_dense_form(2, 2, 3) and use_dense_form(2, 1, 3)
    assert not use_dense_form(3, 3, 3)  # 81 position pairs vs 81 taps: no gain
    assert not use_dense_form(4, 4, 3) and not use_dense_form(1, 1, 1)
    assert not use_dense_form(1, 1, 3, groups=2) and not use_dense_form(1, 1, 3, dilation=2)


def test_dynamic_conv_switch_gives_the_same_result():
    conv = DynamicConv2d(32, 48, 3, 1, 1)
    conv.active_out_channels = 40
    x = torch.randn(6, 24, 2, 2)
    dense = conv(x)
    conv.tiny_map_dense = False
    plain = conv(x)
    assert plain.shape == dense.shape == (6, 40, 2, 2)
    assert torch.allclose(dense, plain, atol=1e-5, rtol=1e-5)


def test_inference_mode_first_call_does_not_break_training_later():
    """The tap index is cached; made under inference_mode it must still serve autograd."""
    weight = torch.randn(4, 3, 3, 3)
    _tap_index.cache_clear()  # so the index is first built inside inference_mode
    with torch.inference_mode():
        conv2d_dense(torch.randn(2, 3, 2, 2), weight, 1, 1)
    w = weight.clone().requires_grad_(True)
    conv2d_dense(torch.randn(2, 3, 2, 2), w, 1, 1).sum().backward()
    assert w.grad is not None and w.grad.shape == w.shape


def test_scoring_reuses_one_matrix_until_the_weight_or_slice_changes(monkeypatch):
    import track1.ops.tiny_map_conv as tiny
    builds = []
    real = tiny.dense_conv_matrix
    monkeypatch.setattr(tiny, "dense_conv_matrix", lambda *a, **k: builds.append(1) or real(*a, **k))
    conv = DynamicConv2d(32, 48, 3, 1, 1)
    conv.active_out_channels = 40
    x = torch.randn(6, 24, 2, 2)
    with torch.inference_mode():
        first = conv(x)
        assert torch.equal(conv(x), first) and len(builds) == 1  # chunks of one subnet
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert conv(x).dtype == torch.bfloat16 and len(builds) == 2  # cached per dtype
        conv.active_out_channels = 32  # another subnet: another slice
        assert conv(x).shape[1] == 32 and len(builds) == 3
        conv.active_out_channels = 40
    with torch.no_grad():
        conv.weight.mul_(2)  # an optimizer step / load_state_dict bumps the version
    with torch.inference_mode():
        assert torch.allclose(conv(x), 2 * first, atol=1e-5) and len(builds) == 4
    x.requires_grad_(True)
    conv(x).sum().backward()  # with autograd: never the cache (a cached matrix has no graph)
    assert len(builds) == 5 and conv.weight.grad is not None


def test_a_replaced_weight_never_hits_the_old_matrix():
    conv = DynamicConv2d(8, 8, 3, 1, 1)
    x = torch.randn(2, 8, 1, 1)
    with torch.inference_mode():
        before = conv(x)
    with torch.no_grad():  # a new parameter object, even with equal storage layout
        conv.weight = torch.nn.Parameter(conv.weight * 3)
    with torch.inference_mode():
        assert torch.allclose(conv(x), 3 * before, atol=1e-5)


def test_a_module_that_has_scored_still_pickles_and_copies(tmp_path):
    import copy
    conv = DynamicConv2d(8, 8, 3, 1, 1)
    x = torch.randn(2, 8, 1, 1)
    with torch.inference_mode():
        expected = conv(x)  # fills the cache
    torch.save(conv, tmp_path / "conv.pt")
    loaded = torch.load(tmp_path / "conv.pt", weights_only=False)
    twin = copy.deepcopy(conv)
    with torch.no_grad():
        twin.weight.mul_(2)  # the copy must not serve the original's matrix
    with torch.inference_mode():
        assert torch.allclose(loaded(x), expected, atol=1e-6)
        assert torch.allclose(twin(x), 2 * expected, atol=1e-5)
        assert torch.allclose(conv(x), expected, atol=1e-6)
