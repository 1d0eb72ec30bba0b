"""``python -m track1 export ARCH``: one subnet of a supernet checkpoint as a standalone
file (``bash run.sh export ARCH``); see ``track1.export``."""
from __future__ import annotations

import argparse
import sys

from track1.commands.argtypes import int_at_least

#: exit status when the .pth was written but the ONNX file asked for was not
ONNX_NOT_WRITTEN = 3

DESCRIPTION = """\
Write one subnet of a trained supernet as a standalone static network: plain Conv2d /
BatchNorm2d layers at the arch's widths (StaticResNet for the Track 1 space, NB201Network
for NAS-Bench-201), with the supernet's weights copied.

The .pth file is a plain dict that loads with torch.load(path, weights_only=True):
  format      "track1-subnet/1"
  space       the search space (track1_resnet48, nb201)
  arch        the canonical arch code
  model       the static class's keyword arguments (num_classes, activation / C, N, ...)
  state_dict  the static network's weights and BN buffers
  costs       FLOPs and params as the space counts them (for track1_resnet48 the numbers
              `info` prints: the challenge's convention at 224 px and 1000 classes,
              whatever the checkpoint's resolution and classes)
  image_size  the supernet's training resolution
  source      the checkpoint's absolute path, size, mtime, step and epoch
  check       the largest |difference| between the exported network's logits and the
              supernet's on this arch (2 random images at image_size), measured before
              writing; the export stops if they differ
To get the network back, in eval mode:
  from track1.export import load_subnet
  net = load_subnet("runs/export/....pth")          # or load_subnet(path, device="cuda")

BN statistics: the subnet carries the supernet's running statistics exactly as they are
in the checkpoint (bn_statistics: "stored"). Those were accumulated over many subnets, so
they are not the subnet's own: `evaluate` re-estimates them per subnet on training images
before it scores (--bn-mode recalibrate); for the standalone network, do the same before
use (or fine-tune it).
"""

EPILOG = """\
exit status: 0 written; 2 bad input (nothing written); 3 the .pth was written but the
ONNX file asked for with --onnx was not (the line printed says why: torch's ONNX exporter
needs the 'onnx' package, which the pinned environment does not install).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="one subnet of a supernet checkpoint as a standalone file",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", metavar="ARCH",
                   help="arch code in the checkpoint's space (52 digits for track1_resnet48, "
                        "'|op~0|+|op~0|op~1|+|...|' for nb201)")
    p.add_argument("--checkpoint", default=None,
                   help="supernet checkpoint (default: the latest *.pth under supernet_ckpt/)")
    p.add_argument("--out", default=None,
                   help="the .pth to write (default: runs/export/<space>-<code>.pth under the "
                        "repository; codes that are not file-name-safe are named by 12 hex "
                        "digits of their SHA-256)")
    p.add_argument("--onnx", action="store_true",
                   help="also write <out>.onnx (torch's TorchScript exporter, dynamo=False; "
                        "input 'images' (batch, 3, N, N), output 'logits', dynamic batch); "
                        "needs the 'onnx' package")
    p.add_argument("--image-size", type=int_at_least(1), default=None,
                   help="N of the ONNX dummy input (default: the checkpoint's image_size)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from track1.infra.checkpoint import find_latest
    from track1.export import OnnxUnavailable, export_onnx, export_subnet, load_subnet, onnx_path
    # the newest supernet, few-shot or stand-alone checkpoint: never a lone few-shot part
    checkpoint = args.checkpoint if args.checkpoint is not None else \
        find_latest(kinds=("supernet", "fewshot", "subnet"))
    info = export_subnet(args.arch, checkpoint, args.out, force=args.force, onnx=args.onnx)
    path = info["path"]
    costs = ", ".join(f"{k} {v:,.0f}" if isinstance(v, (int, float)) else f"{k} {v}"
                      for k, v in info["costs"].items())
    source = info["source"]
    step = "" if source["step"] is None else f", step {source['step']}"
    print(f"wrote {path}")
    print(f"  arch    {info['arch']}")
    print(f"  space   {info['space']} ({info['static_class']}, {info['image_size']} px)")
    print(f"  costs   {costs}")
    print(f"  source  {source['checkpoint']}{step}")
    print(f"  check   logits equal the supernet's on this arch "
          f"(max |diff| {info['check']['max_abs_diff']:.2g})")
    print(f"  load    from track1.export import load_subnet; net = load_subnet({path!r})")
    print("  note    BN statistics are the supernet's as stored; recalibrate before use "
          "(see --help)")
    if args.onnx:
        try:
            written = export_onnx(load_subnet(path), onnx_path(path),
                                  args.image_size or info["image_size"])
        except OnnxUnavailable as e:
            print(f"error: {e}; {path} was written", file=sys.stderr)
            return ONNX_NOT_WRITTEN
        print(f"wrote {written}")
    return 0
