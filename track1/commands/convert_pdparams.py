"""``python -m track1 convert-pdparams``: the organisers' Paddle ResNet-48 (``.pdparams``)
as a track1 checkpoint."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-pdparams", help="the organisers' .pdparams ResNet-48 as a track1 checkpoint",
        description="No Paddle needed: the pickle is read by a restricted unpickler (numpy "
                    "arrays and plain containers only; track1.resnet48.pdparams holds the name "
                    "mapping). The output loads with weights_only=True and works as train "
                    "--init-from or as an evaluator checkpoint. Unmatched and missing keys are "
                    "reported; --strict makes them fatal.")
    p.add_argument("pdparams")
    p.add_argument("output", help="track1 checkpoint to write (.pth)")
    p.add_argument("--activation", default="relu")
    p.add_argument("--strict", action="store_true", help="fail on any unmatched/missing key")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from track1.infra.checkpoint import save_atomic
    from track1.resnet48.pdparams import PdparamsError, load_pdparams, map_pdparams
    from track1.resnet48.supernet import ResNet48Supernet
    arrays = load_pdparams(args.pdparams)
    fc = next((a for k, a in arrays.items() if k.endswith("fc.weight")), None)
    num_classes = int(fc.shape[1]) if fc is not None and fc.ndim == 2 else 1000
    model = ResNet48Supernet(num_classes=num_classes, activation=args.activation)
    state, report = map_pdparams(arrays, model)
    if not report["matched"]:
        raise PdparamsError(f"{args.pdparams}: no key maps onto the ResNet-48 supernet")
    problems = report["unmatched"] + report["missing"] + report["shape_mismatch"]
    if args.strict and problems:
        raise PdparamsError(f"{len(problems)} unmatched/missing/mismatched keys, first: "
                            f"{problems[0]}")
    model.load_state_dict(state, strict=False)
    config = {"space": "track1_resnet48", "name": "pretrained",
              "model": {"num_classes": num_classes, "activation": args.activation},
              "image_size": 224, "source": str(args.pdparams)}
    save_atomic({"model": model.state_dict(), "config": config, "image_size": 224,
                 "epoch": 0, "step": 0}, args.output)
    print(f"matched {len(report['matched'])} tensors, unmatched {len(report['unmatched'])}"
          f"{' ' + str(report['unmatched'][:5]) if report['unmatched'] else ''}, missing "
          f"{len(report['missing'])}{' ' + str(report['missing'][:5]) if report['missing'] else ''},"
          f" shape mismatches {len(report['shape_mismatch'])}; wrote {args.output} "
          f"({num_classes} classes)")
    return 0
