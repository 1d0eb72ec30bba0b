"""The data layer: sources (embedded, folder, tar), decode cache, deterministic batches."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from track1.data import (DataError, TrainBatches, decode_to_tensor, normalize, preprocess,
                         resolve_source)

CLASSES = ["cat", "dog", "emu"]


def _jpeg(rng: np.random.Generator, w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _make_tree(root: Path, val_name: str = "val", per_class: int = 4, size=(40, 30)) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), (val_name, 2)):
        for cls in CLASSES:
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i:03d}.jpg").write_bytes(_jpeg(rng, *size))
    return root


def _make_tar(tree: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for split in sorted(p.name for p in tree.iterdir()):
            tar.add(tree / split, arcname=split)
    return out


# ------------------------------------------------------------------------ sources
def test_embedded_sizes_and_classes():
    train, val = resolve_source(None, "train"), resolve_source(None, "val")
    assert (len(train), len(val)) == (5000, 1000)
    assert train.classes == val.classes and train.num_classes == 10
    assert "airplane" in train.classes and "truck" in train.classes
    assert torch.bincount(train.labels).tolist() == [500] * 10
    assert torch.bincount(val.labels).tolist() == [100] * 10
    image, label = val.load(123)
    assert image.mode == "RGB" and image.size == (32, 32) and label == int(val.labels[123])


def test_folder_and_tar_sources_agree(tmp_path):
    tree = _make_tree(tmp_path / "tree", val_name="test")  # CIFAR layout: val falls back to test/
    tar = _make_tar(tree, tmp_path / "data.tar.gz")
    for split, n in (("train", 12), ("val", 6)):
        folder, packed = resolve_source(tree, split), resolve_source(tar, split)
        assert folder.classes == packed.classes == CLASSES
        assert len(folder) == len(packed) == n
        assert folder.labels.tolist() == packed.labels.tolist()
        for i in (0, n - 1):
            a, b = folder.load(i)[0], packed.load(i)[0]
            assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("case", ["missing", "no_split", "empty", "class_mismatch", "not_data"])
def test_bad_sources_raise_data_error(tmp_path, case):
    if case == "missing":
        path = tmp_path / "nope"
    elif case == "no_split":
        path = tmp_path / "d"
        (path / "other").mkdir(parents=True)
    elif case == "empty":
        path = tmp_path / "d"
        (path / "train" / "cat").mkdir(parents=True)
        (path / "train" / "cat" / "readme.txt").write_text("x")
    elif case == "class_mismatch":
        path = _make_tree(tmp_path / "d")
        (path / "val" / "zebra").mkdir()
    else:
        path = tmp_path / "file.txt"
        path.write_text("hello")
    with pytest.raises(DataError) as e:
        resolve_source(path, "train")
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


def test_bad_split_and_tar_class_mismatch(tmp_path):
    with pytest.raises(DataError):
        resolve_source(None, "holdout")
    tree = _make_tree(tmp_path / "t")
    (tree / "val" / "cat" / "000.jpg").rename(tree / "val" / "emu" / "999.jpg")
    for f in (tree / "val" / "cat").iterdir():
        f.unlink()
    (tree / "val" / "cat").rmdir()
    with pytest.raises(DataError, match="differ"):
        resolve_source(_make_tar(tree, tmp_path / "x.tar"), "val")


# ------------------------------------------------------------------------- decode
def test_preprocess_resize_and_crop():
    big = Image.fromarray(np.zeros((300, 400, 3), dtype=np.uint8))
    assert preprocess(big, 224).shape == (224, 224, 3)
    small = Image.new("RGB", (32, 32), (10, 20, 30))
    out = preprocess(small, 64)
    assert out.shape == (64, 64, 3) and out[5, 5].tolist() == [10, 20, 30]
    assert preprocess(small, 32).tolist() == np.asarray(small).tolist()


def test_decode_cache_hit_equals_fresh_decode(tmp_path):
    tree = _make_tree(tmp_path / "tree", size=(50, 40))
    src = resolve_source(tree, "val")
    a, la = decode_to_tensor(src, 24, cache_dir=tmp_path / "c", progress=False)
    assert a.shape == (6, 3, 24, 24) and a.dtype == torch.uint8 and la.dtype == torch.int64
    assert len(list((tmp_path / "c").glob("*.pt"))) == 1
    b, lb = decode_to_tensor(src, 24, cache_dir=tmp_path / "c", progress=False)
    fresh, lf = decode_to_tensor(src, 24, use_cache=False, workers=1, progress=False)
    assert torch.equal(a, b) and torch.equal(a, fresh) and torch.equal(la, lb) and torch.equal(la, lf)
    sub, lsub = decode_to_tensor(src, 24, indices=[5, 0], cache_dir=tmp_path / "c", progress=False)
    assert torch.equal(sub, a[[5, 0]]) and lsub.tolist() == la[[5, 0]].tolist()
    lim, _ = decode_to_tensor(src, 24, limit=2, cache_dir=tmp_path / "c", progress=False)
    assert torch.equal(lim, a[:2])
    assert len(list((tmp_path / "c").glob("*.pt"))) == 3
    with pytest.raises(DataError):
        decode_to_tensor(src, 24, indices=[6], cache_dir=tmp_path / "c")


def test_images_rewritten_in_place_are_new_data(tmp_path):
    """Issue 13, item 3: the identity (decode cache, evaluate's results folder) was the
    path and the file names, so rewritten images were served from the old cache."""
    tree = _make_tree(tmp_path / "tree", size=(50, 40))
    src = resolve_source(tree, "val")
    old, _ = decode_to_tensor(src, 24, cache_dir=tmp_path / "c", progress=False)
    rng = np.random.default_rng(7)
    for f in sorted((tree / "val").rglob("*.jpg")):   # same names, new pictures
        f.write_bytes(_jpeg(rng, 50, 40))
    again = resolve_source(tree, "val")
    assert again.identity != src.identity
    new, _ = decode_to_tensor(again, 24, cache_dir=tmp_path / "c", progress=False)
    fresh, _ = decode_to_tensor(again, 24, use_cache=False, workers=1, progress=False)
    assert torch.equal(new, fresh) and not torch.equal(new, old)


def test_normalize_values():
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    y = normalize(x)
    assert y.dtype == torch.float32
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([(1 - .485) / .229, (1 - .456) / .224,
                                                       (1 - .406) / .225]))
    assert normalize(x, dtype=torch.bfloat16).dtype == torch.bfloat16


# ------------------------------------------------------------------------ batches
@pytest.fixture(scope="module")
def small_train():
    return resolve_source(None, "train")


@pytest.mark.parametrize("augment", ["crop_flip", "rrc", "none"])
def test_batches_deterministic_and_resumable(small_train, tmp_path, augment):
    kw = dict(augment=augment, seed=3, cache_dir=tmp_path, progress=False)
    a = TrainBatches(small_train, 32, 500, **kw)
    assert len(a) == 10
    a.set_epoch(2)
    full = list(a)
    assert len(full) == 10
    x, y = full[0]
    assert x.shape == (500, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    b = TrainBatches(small_train, 32, 500, **kw)
    b.set_epoch(2)
    resumed = list(b.iter_from(7))
    assert len(resumed) == 3
    for (xa, ya), (xb, yb) in zip(full[7:], resumed):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    b.set_epoch(3)
    assert not torch.equal(next(iter(b))[1], full[0][1])  # a new epoch reshuffles
    if augment != "none":  # augmentation really changes pixels
        plain = TrainBatches(small_train, 32, 500, augment="none", seed=3, cache_dir=tmp_path,
                             progress=False)
        plain.set_epoch(2)
        xp, yp = next(iter(plain))
        assert torch.equal(yp, y) and not torch.equal(xp, x)


def test_sharding_disjoint_and_complete(small_train, tmp_path):
    world = 3
    shards = [TrainBatches(small_train, 32, 100, rank=r, world_size=world, seed=1,
                           augment="none", cache_dir=tmp_path, progress=False) for r in range(world)]
    idx = [s.rank_indices().tolist() for s in shards]
    assert all(len(i) == 5000 // world for i in idx)
    flat = sum(idx, [])
    assert len(set(flat)) == len(flat)
    assert len(shards[0]) == (5000 // world) // 100
    # labels of rank 1's first batch are those of its indices
    _, y = next(iter(shards[1]))
    assert y.tolist() == small_train.labels[idx[1][:100]].tolist()


def test_multiscale_same_sizes_on_every_rank(small_train, tmp_path):
    kw = dict(augment="rrc", multiscale=[16, 24, 32], seed=5, world_size=2, cache_dir=tmp_path,
              progress=False)
    r0, r1 = (TrainBatches(small_train, 32, 250, rank=r, **kw) for r in range(2))
    s0 = [x.shape[-1] for x, _ in r0]
    s1 = [x.shape[-1] for x, _ in r1]
    assert s0 == s1 and len(set(s0)) > 1


def test_streaming_path_deterministic(tmp_path):
    tree = _make_tree(tmp_path / "tree", per_class=6, size=(48, 40))
    src = resolve_source(tree, "train")
    kw = dict(augment="rrc", seed=2, in_memory=False, workers=0, channels_last=True)
    a = TrainBatches(src, 24, 4, **kw)
    full = list(a)
    assert len(full) == 4 and full[0][0].shape == (4, 3, 24, 24)
    assert full[0][0].is_contiguous(memory_format=torch.channels_last)
    resumed = list(TrainBatches(src, 24, 4, **kw).iter_from(2))
    for (xa, ya), (xb, yb) in zip(full[2:], resumed):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_batches_bad_arguments(small_train):
    with pytest.raises(DataError):
        TrainBatches(small_train, 32, 8, augment="mixup")
    with pytest.raises(DataError):
        TrainBatches(small_train, 32, 8, rank=2, world_size=2)


def test_synthetic_imagefolder_tool_writes_a_loadable_tree(tmp_path):
    """tools/make_synthetic_imagefolder.py: the ImageNet-sized timing tree it writes is a
    valid ImageFolder (same classes in train/ and val/, JPEGs of the asked size)."""
    import importlib.util
    from pathlib import Path

    from PIL import Image
    tool = Path(__file__).resolve().parent.parent / "tools" / "make_synthetic_imagefolder.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_imagefolder", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(tmp_path), "--train", "30", "--val", "20", "--size", "80x60",
                        "--workers", "1"]) == 0
    train, val = resolve_source(str(tmp_path), "train"), resolve_source(str(tmp_path), "val")
    assert (len(train), len(val)) == (30, 20) and train.classes == val.classes
    image, label = val.load(3)
    assert image.size == (80, 60) and 0 <= label < len(val.classes)
    with Image.open(next(tmp_path.glob("val/*/*.jpg"))) as im:
        assert im.format == "JPEG"


def test_a_damaged_image_cache_is_decoded_again(tmp_path):
    """Issue 19, M8: flipped bytes in a decoded-image cache file were used silently (the
    accuracies shifted); the CRC check now sends it back to decoding."""
    src = resolve_source(None, "val")
    fresh, labels = decode_to_tensor(src, 16, indices=list(range(40)), use_cache=False,
                                     progress=False)
    cached, _ = decode_to_tensor(src, 16, indices=list(range(40)), cache_dir=tmp_path,
                                 progress=False)
    assert torch.equal(cached, fresh)
    (cache,) = tmp_path.glob("*.pt")
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cache.write_bytes(bytes(data))
    again, again_labels = decode_to_tensor(src, 16, indices=list(range(40)), cache_dir=tmp_path,
                                           progress=False)
    assert torch.equal(again, fresh) and torch.equal(again_labels, labels)


def test_probe_batch_is_decoded_once_and_each_caller_gets_its_own_copy():
    from track1.data import probe_batch
    from track1.data.decode import _probe_batch
    _probe_batch.cache_clear()
    x, y, name = probe_batch(None, 4, 16, 0)
    x.mul_(0)
    y.zero_()                                    # a caller scribbling on its batch ...
    x2, y2, name2 = probe_batch(None, 4, 16, 0)
    assert name2 == name and x2.abs().sum() > 0 and _probe_batch.cache_info().hits == 1
    assert probe_batch(None, 2, 16, 0)[0].equal(x2[:2])          # a prefix of the same draw
