"""Zen-score: determinism, options, caller's weights untouched, CLI field, cache tool."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from track1.cli import main
from track1.proxies import get_proxy
from track1.proxies.zen import arch_seed, score, zen_score
from track1.resnet48.space import ResNet48Space

ARCH1 = "1252233313000000223212122253130000000000006515000000"
OPTS = dict(batch=4, resolution=32)


def test_zen_is_reproducible_and_seeded_per_arch():
    space = ResNet48Space()
    a = space.decode(ARCH1)
    z1, z2 = zen_score(space, a, **OPTS), zen_score(space, a, **OPTS)
    assert z1 == z2
    assert zen_score(space, a, seed=1, **OPTS) != z1          # another seed, another draw
    # scoring its own fresh network in place equals the proxy's copying path
    assert z1 == score(space.build(a, num_classes=10), torch.empty(4, 3, 32, 32), seed=arch_seed(ARCH1))
    assert arch_seed(ARCH1) == arch_seed(ARCH1) != arch_seed(space.encode(space.largest()))


def test_zen_options_change_the_score_and_order_extremes():
    space = ResNet48Space()
    a = space.decode(ARCH1)
    base = zen_score(space, a, **OPTS)
    assert zen_score(space, a, residual=False, **OPTS) != base
    assert zen_score(space, a, batch=4, resolution=48) != base
    rep = zen_score(space, a, repeats=2, **OPTS)
    assert rep != base and abs(rep - base) < 0.1 * abs(base)  # a mean of two close draws
    # the widest, deepest net is more expressive than the smallest by a wide margin
    assert zen_score(space, space.largest(), **OPTS) > zen_score(space, space.smallest(), **OPTS) + 10


def test_zen_contract_leaves_caller_model_untouched():
    space = ResNet48Space()
    net = space.build(space.decode(ARCH1), num_classes=10).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    s = get_proxy("zen")(net, torch.zeros(4, 3, 32, 32), seed=5)
    assert s == score(net, torch.zeros(4, 3, 32, 32), seed=5)
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(before[k], v), k
    with pytest.raises(TypeError):
        score(net, torch.zeros(2, 3, 32, 32), bogus=1)


def test_info_zen_field(capsys):
    assert main(["info", "--zen", "--zen-batch", "4", "--zen-resolution", "32", ARCH1]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["zen"] == pytest.approx(zen_score(ResNet48Space(), ResNet48Space().decode(ARCH1),
                                                 **OPTS))


def test_zen_cache_command_is_resumable(tmp_path):
    out = tmp_path / "cache.jsonl"
    cmd = [sys.executable, "-m", "track1", "zen-cache", "--out", str(out), "--batch", "2",
           "--resolution", "32", "--no-progress"]
    subprocess.run(cmd + ["--limit", "2"], check=True, capture_output=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["key"] for r in rows] == ["arch1", "arch2"]
    first = rows[0]
    assert first["arch"] == ARCH1 and first["flops"] == 2110725120 and first["params"] == 9621328
    subprocess.run(cmd + ["--limit", "3"], check=True, capture_output=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["key"] for r in rows] == ["arch1", "arch2", "arch3"] and rows[0] == first
    bad = subprocess.run(cmd[:-1] + ["--limit", "1", "--archs", str(tmp_path / "none.json")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_proxy_cache_shards_partition_the_list(tmp_path):
    """``proxy-cache --shard K/N``: every N-th arch from the K-th, so N processes cover the
    list once between them, each line what the unsharded run writes."""
    cmd = [sys.executable, "-m", "track1", "proxy-cache", "--batch", "2", "--resolution", "32",
           "--no-progress", "--limit", "3", "--proxies", "synflow"]
    whole, parts = tmp_path / "whole.jsonl", [tmp_path / f"s{k}.jsonl" for k in (0, 1)]
    subprocess.run(cmd + ["--out", str(whole)], check=True, capture_output=True)
    for k, part in enumerate(parts):
        subprocess.run(cmd + ["--out", str(part), "--shard", f"{k}/2"], check=True,
                       capture_output=True)
    rows = {r["key"]: r for r in map(json.loads, whole.read_text().splitlines())}
    got = [[json.loads(x) for x in p.read_text().splitlines()] for p in parts]
    assert [[r["key"] for r in g] for g in got] == [["arch1", "arch3"], ["arch2"]]
    assert {r["key"]: r for g in got for r in g} == rows
    bad = subprocess.run(cmd + ["--out", str(whole), "--shard", "2/2"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--shard" in bad.stderr and "0 <= K < N" in bad.stderr


def test_zen_handles_dead_branches_and_dead_networks():
    """NB201 cells may hold edges whose input node is fed only by `none` (a BN that sees
    zeros): the score stays finite. A cell that disconnects the input scores -inf."""
    from track1.nb201.space import NB201Space
    from track1.proxies.zen import zen_score
    space = NB201Space(C=4, N=1)
    # node 1 fed only by `none`, its outgoing convs see zeros; node 3 still reached from 0
    dead_branch = space.decode("|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|")
    assert math.isfinite(zen_score(space, dead_branch, batch=4, resolution=16))
    disconnected = space.decode("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert zen_score(space, disconnected, batch=4, resolution=16) == -math.inf


def test_diff_kendall_accepts_infinite_teacher_scores():
    from track1.nas.ranking import diff_kendall
    x = torch.tensor([0.1, 0.5, 0.9])
    tau = diff_kendall(x, [-math.inf, 1.0, 2.0])
    assert torch.isfinite(tau) and tau > 0  # same order as the finite ranks 0 < 1 < 2


def test_proxy_cache_adds_proxies_to_a_cache_and_the_teacher_reads_them(tmp_path):
    """``proxy-cache --proxies`` (issue 18, item 5): one cache format for every proxy; a
    rerun with more proxies adds only those; the teacher reads any of them."""
    from track1.nas.teacher import Teacher
    from track1.proxies import get_proxy
    from track1.proxies.zen import arch_seed
    out = tmp_path / "cache.jsonl"
    base = [sys.executable, "-m", "track1", "proxy-cache", "--out", str(out), "--batch", "2",
            "--resolution", "64", "--no-progress", "--limit", "2"]
    subprocess.run(base + ["--proxies", "meco"], check=True, capture_output=True)
    first = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["key"] for r in first] == ["arch1", "arch2"] and "zen" not in first[0]
    r = subprocess.run(base + ["--proxies", "meco,synflow"], check=True, capture_output=True, text=True)
    assert "scored 2 archs (0 already cached)" in r.stdout
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 4 and "meco" not in rows[2] and "synflow" in rows[2]   # only what lacked
    # the value is the proxy on the arch-seeded subnet and batch
    space = ResNet48Space()
    s = arch_seed(ARCH1, 0)
    g = torch.Generator().manual_seed(s)
    x = torch.randn(2, 3, 64, 64, generator=g)
    y = torch.randint(0, 1000, (2,), generator=g)
    torch.manual_seed(s)
    net = space.build(space.decode(ARCH1), num_classes=1000)
    assert rows[2]["synflow"] == pytest.approx(get_proxy("synflow")(net, x, y, seed=s))
    t = Teacher(space, "meco+synflow", cache_file=out)
    assert [t.prior(n, space.decode(ARCH1)) for n in t.priors] == \
        [rows[0]["meco"], rows[2]["synflow"]]
    assert t.computed == 0
    again = subprocess.run(base + ["--proxies", "meco,synflow"], check=True, capture_output=True, text=True)
    assert "scored 0 archs (2 already cached)" in again.stdout
    bad = subprocess.run(base + ["--proxies", "magic"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown proxy 'magic'" in bad.stderr


def test_proxy_cache_gives_swap_its_own_images(tmp_path):
    """SWAP sees ``--swap-batch`` images, the ``--batch`` ones and more drawn after the
    labels (so the other proxies' batch is unchanged); its count is stored, and another
    count is scored anew."""
    from track1.proxies import get_proxy
    from track1.proxies.zen import arch_seed
    out = tmp_path / "cache.jsonl"
    base = [sys.executable, "-m", "track1", "proxy-cache", "--out", str(out), "--batch", "2",
            "--resolution", "32", "--no-progress", "--limit", "1", "--proxies", "naswot,swap"]
    subprocess.run(base + ["--swap-batch", "16"], check=True, capture_output=True)
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert (row["swap_batch"], row["naswot_batch"]) == (16, 2)
    space = ResNet48Space()
    s = arch_seed(ARCH1, 0)
    g = torch.Generator().manual_seed(s)
    x = torch.randn(2, 3, 32, 32, generator=g)
    y = torch.randint(0, 1000, (2,), generator=g)
    more = torch.randn(14, 3, 32, 32, generator=g)
    torch.manual_seed(s)
    net = space.build(space.decode(ARCH1), num_classes=1000)
    assert row["naswot"] == get_proxy("naswot")(net, x, y, seed=s)
    assert row["swap"] == get_proxy("swap")(net, torch.cat([x, more]), seed=s) < 2 ** 16
    r = subprocess.run(base + ["--swap-batch", "12"], check=True, capture_output=True, text=True)
    assert "scored 1 archs (0 already cached)" in r.stdout
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[1]["swap_batch"] == 12 and "naswot" not in rows[1]
    r = subprocess.run(base + ["--swap-batch", "12"], check=True, capture_output=True, text=True)
    assert "scored 0 archs (1 already cached)" in r.stdout


def test_proxy_cache_scores_az_nas_in_place_after_the_other_proxies(tmp_path):
    """AZ-NAS re-initialises the arch-seeded subnet itself (no copy), so proxy-cache runs
    it after the proxies that read the built weights, whatever the order of --proxies:
    every value is the one each proxy gives on its own fresh subnet."""
    from track1.proxies import az_nas, get_proxy
    from track1.proxies.zen import arch_seed
    out = tmp_path / "cache.jsonl"
    subprocess.run([sys.executable, "-m", "track1", "proxy-cache", "--out", str(out), "--batch",
                    "2", "--resolution", "64", "--no-progress", "--limit", "1",
                    "--proxies", "az_nas,meco_opt"], check=True, capture_output=True)
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    space = ResNet48Space()
    s = arch_seed(ARCH1, 0)

    def fresh():
        g = torch.Generator().manual_seed(s)
        x = torch.randn(2, 3, 64, 64, generator=g)
        torch.manual_seed(s)
        return space.build(space.decode(ARCH1), num_classes=1000), x

    net, x = fresh()
    assert row["meco_opt"] == get_proxy("meco_opt")(net, x, seed=s)
    net, x = fresh()
    comps = az_nas.components(net, x, seed=s, batch=2)
    assert {k: row[f"az_{k}"] for k in comps} == comps


def test_proxy_cache_keeps_one_seed_per_file(tmp_path):
    """A line of ``--seed K`` (K != 0) says so, and a cache holds one seed's scores: a run
    with another seed on it is refused in one line instead of joining two seeds' values
    per arch (or finding everything 'cached')."""
    out = tmp_path / "cache.jsonl"
    base = [sys.executable, "-m", "track1", "proxy-cache", "--out", str(out), "--batch", "2",
            "--resolution", "32", "--no-progress", "--limit", "1", "--proxies", "params"]
    subprocess.run(base + ["--seed", "1"], check=True, capture_output=True)
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["seed"] == 1
    bad = subprocess.run(base, capture_output=True, text=True)
    assert bad.returncode == 2 and "--seed 0:" in bad.stderr and "holds scores of seed 1" in bad.stderr
    again = subprocess.run(base + ["--seed", "1"], check=True, capture_output=True, text=True)
    assert "scored 0 archs (1 already cached)" in again.stdout
    plain = tmp_path / "seed0.jsonl"
    subprocess.run(base[:5] + [str(plain)] + base[6:], check=True, capture_output=True)
    assert "seed" not in json.loads(plain.read_text())   # seed 0's lines stay as they were


def test_proxy_cache_zen_with_the_training_head_extends_alike_in_the_teacher(tmp_path):
    """``--zen-classes``: Zen-score's draws depend on the head's size, so a cache meant for a
    1,000-class teacher is scored with that head; its lines say so, and that teacher then
    computes missing archs alike (a 10-class cache it refuses to extend)."""
    from track1.infra.errors import UserError
    from track1.nas.teacher import Teacher
    out = tmp_path / "cache.jsonl"
    base = [sys.executable, "-m", "track1", "proxy-cache", "--out", str(out), "--batch", "2",
            "--resolution", "32", "--no-progress", "--limit", "1", "--proxies", "zen"]
    subprocess.run(base + ["--zen-classes", "1000"], check=True, capture_output=True)
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    space = ResNet48Space()
    assert row["zen_classes"] == 1000
    assert row["zen"] == pytest.approx(zen_score(space, space.decode(ARCH1), batch=2,   # another
                                                 resolution=32, num_classes=1000), rel=1e-6)  # process's threads
    options = {"batch": 2, "resolution": 32}
    other = space.decode(space.smallest().code)
    t = Teacher(space, "zen", cache_file=out, num_classes=1000, zen_options=options)
    assert t.prior("zen", other) == zen_score(space, other, batch=2, resolution=32, num_classes=1000)
    ten = tmp_path / "ten.jsonl"
    subprocess.run(base[:5] + [str(ten)] + base[6:], check=True, capture_output=True)
    with pytest.raises(UserError, match="classes 10.*classes 1000"):
        Teacher(space, "zen", cache_file=ten, num_classes=1000, zen_options=options).prior("zen", other)
    # the same file scored again another way: the arch is scored anew, not 'cached'
    for change in (["--zen-classes", "100"], ["--resolution", "64"]):
        r = subprocess.run(base + change, check=True, capture_output=True, text=True)
        assert "scored 1 archs (0 already cached)" in r.stdout, change
