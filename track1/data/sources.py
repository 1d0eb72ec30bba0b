"""Image sources: the embedded demo set, an ImageFolder tree, or a tar of that tree.

Why one small abstraction: the trainer, the evaluator and the NAS-Bench-201 bench all
need "image i of split s, with its label" and nothing more; where the bytes come from
(a packaged .npz, files on disk, a .tar.gz read once into memory) is hidden here.
Every source also has an ``identity`` string (path + a fingerprint of its contents
list) that keys the decoded-tensor cache.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from track1.infra.errors import UserError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
EMBEDDED = ASSETS / "cifar10_demo.npz"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
#: the folder names tried for a split, in order (``val`` falls back to CIFAR's ``test``)
SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {"train": ("train",), "val": ("val", "test"),
                                             "test": ("test", "val")}


class DataError(UserError, ValueError):
    """Missing or malformed data: the one-line message names the path and the problem."""


def _check_split(split: str) -> tuple[str, ...]:
    if split not in SPLIT_FOLDERS:
        raise DataError(f"unknown split {split!r}; choose from {sorted(SPLIT_FOLDERS)}")
    return SPLIT_FOLDERS[split]


def _open_rgb(data: bytes, what: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")
    except Exception as e:  # PIL raises several types for broken files
        raise DataError(f"cannot decode image {what}: {type(e).__name__}: {e}") from None


class ImageSource:
    """A labelled, indexable set of images of one split.

    Subclasses fill ``name``, ``split``, ``classes``, ``labels`` (int64 tensor),
    ``identity`` and implement ``read_bytes(i)`` (the encoded file) or ``load(i)``.
    """

    name: str
    split: str
    classes: list[str]
    labels: torch.Tensor
    identity: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return int(self.labels.numel())

    def read_bytes(self, i: int) -> bytes:
        raise NotImplementedError

    def describe(self, i: int) -> str:
        return f"#{i} of {self.name}"

    def load(self, i: int) -> tuple[Image.Image, int]:
        """Image ``i`` as an RGB PIL image and its integer label."""
        return _open_rgb(self.read_bytes(i), self.describe(i)), int(self.labels[i])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"classes={self.num_classes})")


class BytesSource(ImageSource):
    """Encoded images held in memory as one byte buffer plus offsets (embedded set, tar)."""

    def __init__(self, name: str, split: str, classes: list[str], data: np.ndarray,
                 offsets: np.ndarray, labels: Sequence[int], names: Sequence[str],
                 identity: str) -> None:
        self.name, self.split, self.classes = name, split, list(classes)
        self.data, self.offsets = data, offsets
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.names = list(names)
        self.identity = identity

    def read_bytes(self, i: int) -> bytes:
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def describe(self, i: int) -> str:
        return f"{self.names[i]} in {self.name}"


class FolderSource(ImageSource):
    """``root/<split folder>/<class>/<image>`` (ImageNet / ImageNet-mini / CIFAR JPEG tree)."""

    def __init__(self, root: Path, split: str, folder: str, classes: list[str],
                 files: list[str], labels: list[int]) -> None:
        self.name, self.split, self.classes = str(root), split, classes
        self.root, self.folder, self.files = root, folder, files
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self._identity: str | None = None

    @property
    def identity(self) -> str:  # type: ignore[override]
        """Path, file names AND each file's size and modification time: images rewritten
        in place are new data (decoded anew, scored anew), not "already in". Computed on
        first use (one ``stat`` per file)."""
        if self._identity is None:
            h = hashlib.sha1()
            base = self.root / self.folder
            for name in self.files:
                try:
                    st = (base / name).stat()
                    h.update(f"{name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{name}|missing\n".encode())
            self._identity = (f"folder:{self.root.resolve()}:{self.folder}:{len(self.files)}:"
                              f"{h.hexdigest()[:16]}")
        return self._identity

    def path(self, i: int) -> Path:
        return self.root / self.folder / self.files[i]

    def read_bytes(self, i: int) -> bytes:
        try:
            return self.path(i).read_bytes()
        except OSError as e:
            raise DataError(f"cannot read image {self.path(i)}: {e.strerror}") from None

    def describe(self, i: int) -> str:
        return str(self.path(i))


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _scan_folder(split_dir: Path) -> tuple[list[str], list[str], list[int]]:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    files, labels = [], []
    for label, cls in enumerate(classes):
        names = sorted(e.name for e in os.scandir(split_dir / cls) if e.is_file() and _is_image(e.name))
        files += [f"{cls}/{n}" for n in names]
        labels += [label] * len(names)
    return classes, files, labels


def _folder_source(root: Path, split: str) -> FolderSource:
    wanted = _check_split(split)
    folder = next((f for f in wanted if (root / f).is_dir()), None)
    if folder is None:
        raise DataError(f"{root} has no {' or '.join(repr(f + '/') for f in wanted)} folder "
                        "(expected ImageNet layout: train/<class>/*.jpg and val/<class>/*.jpg)")
    classes, files, labels = _scan_folder(root / folder)
    if not classes:
        raise DataError(f"{root / folder} has no class sub-folders (expected <class>/*.jpg)")
    if not files:
        raise DataError(f"{root / folder} has no images ({', '.join(IMAGE_EXTENSIONS)}) "
                        "in its class folders")
    # the two splits must agree on classes, or labels would mean different things
    for other in ("train", "val"):
        other_folder = next((f for f in SPLIT_FOLDERS[other] if (root / f).is_dir()), None)
        if other_folder is None or other_folder == folder:
            continue
        other_classes = sorted(d.name for d in (root / other_folder).iterdir()
                               if d.is_dir() and not d.name.startswith("."))
        if other_classes != classes:
            diff = sorted(set(classes) ^ set(other_classes))
            raise DataError(f"{root}: class folders of {folder}/ and {other_folder}/ differ "
                            f"({len(classes)} vs {len(other_classes)}; e.g. {diff[:3]})")
    return FolderSource(root, split, folder, classes, files, labels)


def _tar_source(path: Path, split: str) -> BytesSource:
    """Read one split's members of a (compressed) tar into memory in one streaming pass."""
    wanted = _check_split(split)
    found: dict[str, dict[str, list[str]]] = {}   # top folder -> class -> file names
    blobs: dict[str, dict[str, bytes]] = {f: {} for f in wanted}
    try:
        with tarfile.open(path, "r|*") as tar:
            for m in tar:
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if len(parts) >= 2 and (m.isdir() or m.isfile()):
                    top = parts[0]
                    if len(parts) == 2 and m.isdir():
                        found.setdefault(top, {}).setdefault(parts[1], [])
                    elif len(parts) == 3 and m.isfile() and _is_image(parts[2]):
                        found.setdefault(top, {}).setdefault(parts[1], []).append(parts[2])
                        if top in blobs:
                            blobs[top][f"{parts[1]}/{parts[2]}"] = tar.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read tar {path}: {type(e).__name__}: {e}") from None
    folder = next((f for f in wanted if f in found), None)
    if folder is None:
        raise DataError(f"{path} has no {' or '.join(repr(f + '/') for f in wanted)} folder "
                        f"at its top level (found: {sorted(found)[:5]})")
    classes = sorted(found[folder])
    split_folders = [next((f for f in SPLIT_FOLDERS[s] if f in found), None) for s in ("train", "val")]
    if all(split_folders) and sorted(found[split_folders[0]]) != sorted(found[split_folders[1]]):
        raise DataError(f"{path}: class folders of {split_folders[0]}/ and {split_folders[1]}/ differ")
    names = sorted(blobs[folder], key=lambda n: (classes.index(n.split("/")[0]), n))
    if not names:
        raise DataError(f"{path}: {folder}/ has no images in class folders")
    index = {c: i for i, c in enumerate(classes)}
    labels = [index[n.split("/")[0]] for n in names]
    lengths = np.fromiter((len(blobs[folder][n]) for n in names), dtype=np.int64, count=len(names))
    offsets = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(blobs[folder][n] for n in names), dtype=np.uint8)
    st = path.stat()
    identity = f"tar:{path.resolve()}:{st.st_size}:{int(st.st_mtime)}:{folder}"
    return BytesSource(str(path), split, classes, data, offsets, labels,
                       [f"{folder}/{n}" for n in names], identity)


def embedded_source(split: str) -> BytesSource:
    """The packaged CIFAR-10 demo subset (500 train / 100 val images per class)."""
    _check_split(split)
    if not EMBEDDED.is_file():
        raise DataError(f"embedded dataset missing: {EMBEDDED} (rebuild it with "
                        "`python tools/make_embedded_dataset.py`)")
    with np.load(EMBEDDED, allow_pickle=False) as z:
        data, offsets, labels = z["data"], z["offsets"], z["labels"]
        split_ids, classes, names = z["split"], [str(c) for c in z["classes"]], z["names"]
    keep = np.flatnonzero(split_ids == (0 if split == "train" else 1))
    starts, ends = offsets[keep], offsets[keep + 1]
    new_offsets = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=new_offsets[1:])
    sub = np.concatenate([data[s:e] for s, e in zip(starts, ends)])
    st = EMBEDDED.stat()
    identity = f"embedded:{st.st_size}:{int(st.st_mtime)}:{split}"
    return BytesSource("embedded cifar10_demo", split, classes, sub, new_offsets, labels[keep],
                       [str(n) for n in names[keep]], identity)


def resolve_source(root: str | os.PathLike | None, split: str) -> ImageSource:
    """The images of ``split`` ("train" or "val") under ``root``.

    ``None`` gives the embedded demo set; a folder is read as ``train/``, ``val/``
    (falling back to ``test/``) with one sub-folder per class; a ``.tar`` / ``.tar.gz``
    / ``.tgz`` of that layout is read directly, its member bytes held in memory.
    """
    if root is None:
        return embedded_source(split)
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data path not found: {path}")
    if path.is_dir():
        return _folder_source(path, split)
    if tarfile.is_tarfile(path):
        return _tar_source(path, split)
    raise DataError(f"{path} is neither a folder nor a tar archive of train/ and val/ folders")
