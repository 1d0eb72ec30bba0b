"""The NAS-Bench-201 paper table in ONE device command: probe, plan, train, score, collect,
with everything brought back under ``$OUT`` even when the time runs out.

    # on the GPU machine, from the repository root (CIFAR-10 tar carried in .devdata/):
    PYTHONUNBUFFERED=1 python3 tools/device_nb201_paper.py --limit-s 520
    # here, the whole flow on the CPU with a toy budget (what the tests rehearse):
    .venv/bin/python tools/device_nb201_paper.py --rehearse --out runs/rehearsal

Steps, each timed against ``--limit-s`` (the whole command):

1. probe (``tools/bench_nb201_engine.py``): steps/s of the plain and the static-graph
   step and archs/s of both scorers, one process, scored at the bench's batch size; then
   ``--jobs`` plain processes at once over one wall-clock window, without and (where
   ``nvidia-cuda-mps-control`` runs, as root) with CUDA MPS, which stays on if it helped;
2. plan (``track1.bench.device_plan``): engine and scorer by what all the processes
   together do, the largest complete cosine schedule that fits, and the scoring
   (held-out images first, then archs, then points of the curve); ``plan.json``;
3. train (``bench-nb201 --train-only``) in its own process group, stopped at the plan's
   limit (SIGINT to the group, SIGKILL after 20 s): what it trained stays, each fraction
   point's checkpoint included;
4. score (``bench-nb201 --score-only``): every point that was reached, in the time kept
   for it; a run cut short is scored as far as it got and marked incomplete;
5. collect: ``results.tar.gz`` (summaries, predictions, timing, every log, the probe and
   the plan) and the final supernets (model state, fp32) a few to a tar; the console log
   streams to ``$OUT/device_log.txt`` as it is written. At most 8 files come back.

``--engine``, ``--scorer``, ``--epochs``, ``--archs``, ``--fractions`` and
``--eval-images`` force that part of the plan.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from track1.bench.device_plan import FALLBACK, plan_budget, supernets_per_tar
from track1.infra.process_group import TIMED_OUT, run_group, signal_group

ROOT = Path(__file__).resolve().parent.parent
COLLECT_S = 30.0      # kept for step 5
MPS_PIPE = "/tmp/nvidia-mps"


class Console:
    """Prints and appends every line to ``$OUT/device_log.txt`` at once (flushed), so a
    command cut off at its time limit still returns what it printed."""

    def __init__(self, path: Path, t0: float) -> None:
        self.f = open(path, "a", buffering=1)
        self.t0 = t0

    def __call__(self, msg: str) -> None:
        line = f"=== {time.time() - self.t0:6.1f} s  {msg}"
        print(line, flush=True)
        self.f.write(line + "\n")

    def left(self, limit_s: float) -> float:
        return limit_s - (time.time() - self.t0)


def child_env() -> dict[str, str]:
    """The repository on the child's PYTHONPATH: the device's interpreter is a CUDA
    python3 without the package installed (as run.sh's TRACK1_PYTHON)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


def run(cmd: list[str], timeout: float, log: Path, say: Console) -> int:
    """``cmd`` in its own process group (``track1.infra.process_group``), output to ``log``."""
    say("$ " + " ".join(cmd))
    return run_group(cmd, timeout, log, cwd=ROOT, env=child_env())


def tail(path: Path, n: int = 20) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(ln for ln in lines[-n:] if "Warning" not in ln)


# ----------------------------------------------------------------------------- probe
def mps(action: str) -> bool:
    """Start (``on``) or stop (``off``) the CUDA MPS daemon; False where it cannot."""
    binary = shutil.which("nvidia-cuda-mps-control")
    if binary is None or os.geteuid() != 0:
        return False
    env = {**os.environ, "CUDA_MPS_PIPE_DIRECTORY": MPS_PIPE,
           "CUDA_MPS_LOG_DIRECTORY": "/tmp/nvidia-mps-log"}
    try:
        if action == "on":
            os.makedirs(MPS_PIPE, exist_ok=True)
            os.makedirs("/tmp/nvidia-mps-log", exist_ok=True)
            ok = subprocess.run([binary, "-d"], env=env, timeout=20).returncode == 0
            time.sleep(1.0)
            return ok
        return subprocess.run([binary], input="quit\n", text=True, env=env,
                              timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def probe_concurrent(py: str, base: list[str], jobs: int, seconds: float, out: Path,
                     tag: str, say: Console, lead_s: float = 30.0) -> float | None:
    """Steps/s of ``jobs`` plain-step processes together over one wall-clock window,
    which opens ``lead_s`` from now (after every copy's import and warm-up)."""
    start_at = time.time() + lead_s
    procs, files = [], []
    for i in range(jobs):
        path = out / f"_concurrent_{tag}_{i}.json"
        files.append(path)
        procs.append(subprocess.Popen(
            [py, "tools/bench_nb201_engine.py", *base, "--engines", "plain", "--skip", "score",
             "--seconds", str(seconds), "--warmup", "5", "--start-at", str(start_at),
             "--json-out", str(path)], cwd=ROOT, env=child_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    total = 0.0
    for p, path in zip(procs, files):
        try:
            p.wait(timeout=start_at - time.time() + seconds + 60)
        except subprocess.TimeoutExpired:
            for q in procs:
                signal_group(q.pid, signal.SIGKILL)
            return None
        if p.returncode != 0 or not path.exists():
            return None
        r = json.loads(path.read_text())["train"]["plain"]
        if r["late_start_s"] > 1.0:      # its window did not overlap the others'
            return None
        total += r["steps_per_s"]
        path.unlink()
    say(f"{jobs} plain processes at once ({tag}): {total:.1f} steps/s together")
    return total


def probe(args, py: str, out: Path, say: Console) -> dict | None:
    """One-process rates of both engines and scorers, then the plain step's throughput
    with ``--jobs`` processes, MPS off and (where possible) on."""
    if args.rehearse:
        base = ["--device", "cpu", "--C", "4", "--N", "1", "--batch", "16"]
        single = base + ["--steps", "3", "--warmup", "1", "--archs", "4", "--archs-per-pass", "4",
                         "--eval-images", "32", "--calib-images", "32", "--score-batch", "32"]
        seconds, lead = 2.0, 15.0
    else:
        base = ["--device", "cuda", "--batch", "512", "--amp", "--channels-last"]
        single = base + ["--steps", "30", "--warmup", "5", "--archs", "100",
                         "--archs-per-pass", str(args.archs_per_pass), "--eval-images", "5000",
                         "--calib-images", "512", "--score-batch", str(args.score_batch)]
        seconds, lead = 8.0, 30.0
    rc = run([py, "tools/bench_nb201_engine.py", *single, "--json-out",
              str(out / "engine.json")], min(150.0, say.left(args.limit_s) - 200),
             out / "engine_log.txt", say)
    if rc != 0 or not (out / "engine.json").exists():
        say(f"engine probe failed (exit {rc}):\n{tail(out / 'engine_log.txt')}")
        return None
    result = json.loads((out / "engine.json").read_text())
    say(f"one process: train plain {result['train']['plain']['steps_per_s']:.1f} / fast "
        f"{result['train']['fast']['steps_per_s']:.1f} steps/s; score plain "
        f"{result['score']['plain']['archs_per_s']:.2f} / fast "
        f"{result['score']['fast']['archs_per_s']:.2f} archs/s")
    jobs = min(args.jobs, args.runs)
    concurrent: dict = {"jobs": jobs, "mps_off": None, "mps_on": None, "mps_available": False,
                        "mps_used": False}
    if jobs > 1 and not args.no_concurrency_probe:
        concurrent["mps_off"] = probe_concurrent(py, base, jobs, seconds, out, "mps_off", say,
                                                 lead)
        if not args.rehearse and mps("on"):
            concurrent["mps_available"] = True
            concurrent["mps_on"] = probe_concurrent(py, base, jobs, seconds, out, "mps_on", say,
                                                    lead)
            helped = (concurrent["mps_on"] or 0) > 1.05 * (concurrent["mps_off"] or 0)
            concurrent["mps_used"] = helped
            if not helped:
                mps("off")
            say(f"CUDA MPS {'helped: kept on' if helped else 'did not help: off'}")
    result["concurrent"] = {"plain": concurrent}
    (out / "engine.json").write_text(json.dumps(result, indent=1))
    return result


# --------------------------------------------------------------------------- collect
def collect(bench: Path, out: Path, say: Console, extra: list[Path]) -> list[Path]:
    """results.tar.gz (every small file of the bench and ``extra``) and the final
    supernets (model state) a few to a tar; returns the files written under ``out``."""
    import torch
    written = [out / "results.tar.gz"]
    with tarfile.open(written[0], "w:gz") as tar:
        for path in sorted(bench.rglob("*")) if bench.exists() else []:
            small = path.suffix in (".json", ".csv", ".txt", ".yaml")
            if path.is_file() and small and ("ckpt" not in path.parts or path.name == "config.yaml"):
                tar.add(path, arcname=str(path.relative_to(bench.parent)))
        for path in extra:
            if path.exists():
                tar.add(path, arcname=f"device/{path.name}")
    ckpts = sorted(bench.glob("*/ckpt/supernet/last.pth")) if bench.exists() else []
    tmp = out / "_models"
    tmp.mkdir(exist_ok=True)
    models = []
    for path in ckpts:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        target = tmp / f"{path.parts[-4]}.pth"
        torch.save({"model": ckpt["model"], "config": ckpt["config"], "step": ckpt["step"]},
                   target)
        models.append(target)
    if models:
        per = supernets_per_tar(len(models), max(m.stat().st_size for m in models) + 4096)
        for i in range(0, len(models), per):
            written.append(out / f"supernets_{i // per}.tar")
            with tarfile.open(written[-1], "w") as tar:
                for m in models[i:i + per]:
                    tar.add(m, arcname=m.name)
    shutil.rmtree(tmp)
    for path in extra:  # now inside results.tar.gz; the streamed log stays a file
        if path.exists() and path.name != "device_log.txt":
            path.unlink()
    say(f"collected {len(written)} files (+ device_log.txt): "
        + ", ".join(p.name for p in written))
    return written


def summaries(bench: Path, say: Console) -> None:
    for path in sorted(bench.glob("*/summary.json")):
        s = json.loads(path.read_text())
        curve = " ".join(f"{c['fraction']:.0%}:{c['kendall']:.3f}/{c['kendall_neg_loss']:.3f}"
                         for c in s.get("curve", []))
        noise = s.get("split_half", {})
        say(f"{s['run']:22s} Kendall {s['accuracy']['kendall']:.4f} (-loss "
            f"{s['neg_loss']['kendall']:.4f}; split-half {noise.get('accuracy', float('nan')):.3f}"
            f"/{noise.get('neg_loss', float('nan')):.3f}) steps {s['budget']['steps']}"
            f"{'' if s.get('complete', True) else ' INCOMPLETE'} | {curve}")


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "runs/device_out"))
    ap.add_argument("--cifar", default=".devdata/cifar10-jpeg.tar.gz")
    ap.add_argument("--bench-dir", default="/tmp/nb201_paper")
    ap.add_argument("--limit-s", type=float, default=520.0,
                    help="the whole command's time (the device call's limit less a margin)")
    ap.add_argument("--methods", default="spos,rdnas_flops")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--score-batch", type=int, default=500,
                    help="evaluation batch, the same in the probe and the bench")
    ap.add_argument("--archs-per-pass", type=int, default=40)
    ap.add_argument("--engine", choices=("plain", "fast"), default=None)
    ap.add_argument("--scorer", choices=("plain", "fast"), default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--archs", type=int, default=None)
    ap.add_argument("--fractions", default=None, help="e.g. 0.25,1")
    ap.add_argument("--eval-images", type=int, default=None)
    ap.add_argument("--no-concurrency-probe", action="store_true")
    ap.add_argument("--rehearse", action="store_true",
                    help="the whole flow on the CPU with a toy budget (embedded data)")
    args = ap.parse_args(argv)
    t0 = time.time()
    out, bench = Path(args.out), Path(args.bench_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = Console(out / "device_log.txt", t0)
    py = sys.executable
    args.runs = len(args.methods.split(",")) * len(args.seeds.split(","))
    if args.rehearse:
        args.jobs = min(args.jobs, 2)
    try:
        import torch
        say(f"machine: python {py}, torch {torch.__version__}, "
            f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA'}")
    except ImportError:
        say(f"machine: python {py}, no torch")
    if args.rehearse:
        data, device = "embedded", "cpu"
        extra = ["--steps-per-epoch", "2", "--batch-size", "16", "--calib-images", "32",
                 "--set", "model.C=4", "--set", "model.N=1"]
    else:
        data, device = str(Path(args.cifar).resolve()), "cuda"
        if not Path(data).exists():
            say(f"CIFAR-10 tar not found at {data}: carry .devdata/")
            return 2
        extra = []
    engine = probe(args, py, out, say)
    force = {"engine": args.engine, "scorer": args.scorer, "epochs": args.epochs,
             "archs": args.archs, "eval_images": args.eval_images,
             "fractions": (tuple(float(f) for f in args.fractions.split(","))
                           if args.fractions else None)}
    left = say.left(args.limit_s) - COLLECT_S
    if engine is None:
        plan = {**FALLBACK, **{k: v for k, v in force.items() if v is not None},
                "note": "probe failed: the fallback plan"}
    else:
        plan = plan_budget(engine, left, args.runs, min(args.jobs, args.runs), 512,
                           force=force)
        plan["mps"] = engine["concurrent"]["plain"]
    if args.rehearse:  # the toy budget; the planner's arithmetic above is still recorded
        plan["planned"] = {k: plan[k] for k in ("epochs", "archs", "eval_images", "jobs",
                                                "train_s_limit", "score_s_est") if k in plan}
        plan.update(epochs=1, archs=4, eval_images=32, jobs=2, train_s_limit=left * 0.5,
                    score_s_est=0, overhead_s_est=0)
    plan.setdefault("train_s_limit", left * 0.5)
    (out / "plan.json").write_text(json.dumps(plan, indent=1))
    say(f"plan: {json.dumps(plan)}")
    common = [py, "-m", "track1", "bench-nb201", "--protocol", "paper", "--data", data,
              "--methods", args.methods, "--seeds", args.seeds, "--jobs", str(plan["jobs"]),
              "--epochs", str(plan["epochs"]), "--archs", str(plan["archs"]),
              "--eval-images", str(plan["eval_images"]),
              "--fractions", ",".join(str(f) for f in plan["fractions"]),
              "--engine", plan["engine"], "--scorer", plan["scorer"],
              "--score-batch", str(args.score_batch), "--archs-per-pass", str(args.archs_per_pass),
              "--device", device, "--out", str(bench), "--no-progress", *extra]
    # the held-out images once into the shared cache, so the processes only load them
    decode = ("import sys; from track1.bench.data import load_eval_data; "
              "from track1.bench.protocols import get_protocol; "
              "load_eval_data(None if sys.argv[1] == 'embedded' else sys.argv[1], "
              "int(sys.argv[2]), int(sys.argv[3]), protocol=get_protocol('paper'))")
    calib = "32" if args.rehearse else "512"
    run([py, "-c", decode, data, str(plan["eval_images"]), calib],
        min(90.0, say.left(args.limit_s) - COLLECT_S), out / "decode_log.txt", say)
    score_est = plan.get("score_s_est", 0) + plan.get("overhead_s_est", 0) / 2
    train_limit = min(plan["train_s_limit"], say.left(args.limit_s) - COLLECT_S - score_est)
    say(f"train ({train_limit:.0f} s at most)")
    rc_train = run(common + ["--train-only"], train_limit, out / "bench_train_log.txt", say)
    if rc_train == TIMED_OUT:
        say("training stopped at its limit: every point reached is scored")
    say(f"train exit {rc_train}:\n{tail(out / 'bench_train_log.txt', 8)}")
    rc_score = run(common + ["--score-only"], say.left(args.limit_s) - COLLECT_S,
                   out / "bench_score_log.txt", say)
    say(f"score exit {rc_score}:\n{tail(out / 'bench_score_log.txt', 8)}")
    if plan.get("mps", {}).get("mps_used"):
        mps("off")
    summaries(bench, say)
    collect(bench, out, say, [out / n for n in ("engine.json", "engine_log.txt", "plan.json",
                                                "decode_log.txt", "bench_train_log.txt",
                                                "bench_score_log.txt")])
    say("done")
    return 0 if rc_score == 0 else rc_score


if __name__ == "__main__":
    raise SystemExit(main())
