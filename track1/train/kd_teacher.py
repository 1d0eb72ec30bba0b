"""The frozen external teacher of ``loss.teacher_kd`` (config key ``kd_teacher``).

Distillation from a fixed, already trained network, as in once-for-all's ``kd_ratio``
and the 1st-place Track 1 solution: the teacher gives soft targets to every subnet of a
step (``track1.nas.step.train_step``, argument ``external_teacher``). It is one of

- a ``.pdparams`` file, the organisers' pretrained ResNet-48, read into a
  ``track1_resnet48`` supernet with ``load_pdparams`` (every tensor must load);
- a track1 checkpoint (``last.pth`` of any run, of any space), rebuilt with
  ``track1.registry.load_supernet``;

and from either the teacher is one subnet, ``kd_teacher.arch`` (None: the largest),
extracted as a static network. It is frozen: eval mode, ``requires_grad`` False, never
wrapped by DDP, never in the optimiser, never saved in the student's checkpoint.

BatchNorm (``kd_teacher_bn``): ``stored`` uses the file's running statistics (right for
a network trained as that one arch: the organisers' ResNet-48, a ``train-subnet`` run);
``batch`` normalises with each batch's own statistics and keeps none (once-for-all puts
its teacher in train mode for this reason; a supernet's stored statistics mix every
subnet it trained, docs/REFERENCE.md §7); ``auto`` picks ``stored`` for a ``.pdparams``
file and for a checkpoint trained as the teacher's arch alone, ``batch`` otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from track1.infra.errors import UserError
from track1.train.errors import TrainError

#: ``kd_teacher_bn`` values
BN_MODES = ("auto", "stored", "batch")
#: the space the organisers' ``.pdparams`` ResNet-48 is read into
PDPARAMS_SPACE = "track1_resnet48"


def load_kd_teacher(path: str | os.PathLike, num_classes: int, *, arch: str | None = None,
                    bn: str = "auto", device: str | torch.device = "cpu",
                    channels_last: bool = False,
                    log: Callable[[str], None] | None = None) -> nn.Module:
    """The frozen teacher network of ``path`` (see the module docstring); ``TrainError``,
    one line naming ``kd_teacher``, when the file cannot be read, is incomplete, predicts
    another number of classes than ``num_classes``, or ``arch`` is not of its space."""
    from track1.registry import build_supernet, load_supernet
    if bn not in BN_MODES:
        raise TrainError(f"config 'kd_teacher.bn' must be one of {list(BN_MODES)}, got {bn!r}")
    path = str(path)
    if not Path(path).is_file():
        raise TrainError(f"kd_teacher {path}: file not found")
    if path.endswith(".pdparams"):
        net = build_supernet(PDPARAMS_SPACE, {"num_classes": num_classes})
        try:
            report = net.load_pdparams(path, include_head=True)
        except UserError as e:
            if "classifier does not fit" in str(e):
                raise TrainError(f"kd_teacher {path}: its classifier does not fit this run's "
                                 f"{num_classes} classes (model.num_classes): the teacher must "
                                 "predict the run's classes") from None
            raise TrainError(f"kd_teacher: {e}") from None
        incomplete = report["missing"] + report["shape_mismatch"]
        if incomplete:
            raise TrainError(f"kd_teacher {path}: {len(incomplete)} of the teacher's tensors are "
                             f"missing or misshapen (first: {incomplete[0]}); a teacher must load "
                             "completely")
        saved_subnet, trained_alone = None, True
    else:
        try:
            net, saved = load_supernet(path)
        except UserError as e:
            raise TrainError(f"kd_teacher: {e}") from None
        teacher_classes = getattr(net, "num_classes", None)
        if teacher_classes != num_classes:
            raise TrainError(f"kd_teacher {path} predicts {teacher_classes} classes, this run has "
                             f"{num_classes} (model.num_classes): the teacher must predict the "
                             "run's classes")
        saved_subnet, trained_alone = saved.get("subnet"), False
    space = net.space
    try:
        teacher_arch = space.largest() if arch is None else space.decode(arch)
    except (ValueError, TypeError) as e:
        raise TrainError(f"config 'kd_teacher.arch': {e}") from None
    if saved_subnet is not None:
        try:
            trained_alone = space.decode(saved_subnet) == teacher_arch
        except (ValueError, TypeError):
            trained_alone = False
    mode = bn if bn != "auto" else ("stored" if trained_alone else "batch")
    try:
        teacher = net.extract(teacher_arch)
    except (ValueError, TypeError) as e:
        raise TrainError(f"config 'kd_teacher.arch': {e}") from None
    teacher = freeze_teacher(teacher, batch_bn=mode == "batch", device=device,
                             channels_last=channels_last)
    if log is not None:
        log(f"kd teacher: {path}, arch {space.encode(teacher_arch)}, BN {mode} statistics, "
            f"{sum(p.numel() for p in teacher.parameters()) / 1e6:.2f} M parameters (frozen)")
    return teacher


def freeze_teacher(net: nn.Module, *, batch_bn: bool = False,
                   device: str | torch.device = "cpu", channels_last: bool = False) -> nn.Module:
    """``net`` as a frozen teacher: on ``device`` (channels_last when asked), eval mode,
    no parameter requiring a gradient. ``batch_bn``: every BatchNorm drops its running
    statistics, so it normalises with the batch's own and changes no buffer."""
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if batch_bn:
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()
