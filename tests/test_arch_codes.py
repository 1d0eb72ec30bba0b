"""Arch codes: round trip, every validation rule, seeded tied-space sampling, distances."""
from __future__ import annotations

import random

import pytest

from track1.data.arch_list import ArchListError
from track1.resnet48.official import OFFICIAL_SIZE, load_arch_list
from track1.resnet48.arch import (MAX_DEPTHS, MIN_DEPTHS, WIDTH_CODES, ArchCodeError, decode, encode,
                                  group_distance, hamming_distance, is_tied, largest_arch,
                                  random_arch, smallest_arch, width_distance)
from track1.resnet48.space import ResNet48Space

ARCH1 = "1252233313000000223212122253130000000000006515000000"


def test_official_list_round_trips_and_is_tied(official_codes):
    assert len(official_codes) == OFFICIAL_SIZE == len(set(official_codes))
    for code in official_codes:
        arch = decode(code)  # tied=True: every official code lies in the tied space
        assert encode(arch) == code
        assert is_tied(arch)


def test_load_arch_list_validates_and_keeps_order():
    archs = load_arch_list()
    keys = list(archs)
    assert keys[:3] == ["arch1", "arch2", "arch3"] and keys[-1] == "arch45000"
    assert archs["arch1"] == ARCH1


def test_load_arch_list_names_the_bad_key(tmp_path):
    bad = tmp_path / "list.json"
    bad.write_text('{"arch1": {"acc": 0, "arch": "%s"}, "arch2": {"acc": 0, "arch": "%s"}}'
                   % (ARCH1, ARCH1[:-1] + "9"))
    with pytest.raises(ArchListError, match=r"'arch2'.*code\[51\]"):
        load_arch_list(bad)
    with pytest.raises(ArchListError, match="not found"):
        load_arch_list(tmp_path / "missing.json")


def _with(code: str, i: int, ch: str) -> str:
    return code[:i] + ch + code[i + 1:]


@pytest.mark.parametrize("code, pattern", [
    (ARCH1[:-1], r"length is 51, must be 52"),
    (ARCH1 + "0", r"length is 53"),
    (_with(ARCH1, 7, "x"), r"code\[7\] \(stage 1 block 1 conv2 code\) is 'x': every character must be a digit"),
    (_with(ARCH1, 0, "2"), r"code\[0\] \(image-size code\).*must be one of \[1\]"),
    (_with(ARCH1, 1, "1"), r"code\[1\] \(depth of stage 1\).*depth must be in 2\.\.5"),
    (_with(ARCH1, 3, "9"), r"code\[3\] \(depth of stage 3\).*depth must be in 2\.\.8"),
    (_with(ARCH1, 4, "6"), r"code\[4\] \(depth of stage 4\).*depth must be in 2\.\.5"),
    (_with(ARCH1, 5, "8"), r"code\[5\] \(stem width code\).*width codes are 1\.\.7"),
    (_with(ARCH1, 11, "3"), r"code\[11\] \(stage 1 block 3 conv2 code\).*must be '00'"),
    (_with(ARCH1, 6, "0"), r"code\[6\] \(stage 1 block 1 conv1 code\).*active block.*not 0"),
    (_with(ARCH1, 6, "8"), r"code\[6\].*width code 1\.\.7"),
    (_with(ARCH1, 9, "4"), r"code\[9\] \(stage 1 block 2 conv2 code\).*conv2 tie broken.*stage 1.*stem code"),
    (_with(ARCH1, 19, "1"), r"code\[19\] \(stage 2 block 2 conv2 code\).*conv2 tie broken.*stage 2"),
])
def test_each_rule_is_named(code, pattern):
    with pytest.raises(ArchCodeError, match=pattern):
        decode(code)


def test_untied_codes_decode_when_asked():
    untied = _with(ARCH1, 19, "1")
    arch = decode(untied, tied=False)
    assert encode(arch) == untied and not is_tied(arch)
    with pytest.raises(ArchCodeError):
        decode(12345)  # type: ignore[arg-type]


def test_largest_and_smallest_codes_match_spec():
    assert encode(largest_arch()) == "155851" + "11" * 23
    assert encode(smallest_arch()) == "1222277777000000777700000077770000000000007777000000"


def test_sampling_is_seeded_and_stays_in_the_tied_space():
    a = [random_arch(random.Random(7)).code for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = random.Random(0)
    archs = [random_arch(rng) for _ in range(3000)]
    for arch in archs[:500]:
        assert decode(encode(arch)) == arch and is_tied(arch)
    for s in range(4):  # every depth and width choice is reachable
        assert {a.depths[s] for a in archs} == set(range(MIN_DEPTHS[s], MAX_DEPTHS[s] + 1))
        assert {a.blocks[s][0][1] for a in archs} == set(WIDTH_CODES)
    assert {c1 for a in archs for _, _, c1, _ in a.iter_blocks()} == set(WIDTH_CODES)
    assert len({a.code for a in archs}) == len(archs)


def test_space_protocol_round_trip_and_distance_choice():
    space = ResNet48Space(distance="width")
    arch = space.sample(random.Random(3))
    assert space.decode(space.encode(arch)) == arch
    assert space.distance(arch, arch) == 0.0
    with pytest.raises(ValueError, match="unknown distance"):
        ResNet48Space(distance="nope")


def test_distances():
    big, small = largest_arch(), smallest_arch()
    # code[5:] of largest vs smallest: every one of the 47 characters differs
    assert hamming_distance(big, small) == 47
    assert hamming_distance(big, big) == 0
    one_width = decode(_with(largest_arch().code, 6, "7"))  # one conv1 1.0 -> 0.7
    assert hamming_distance(big, one_width) == 1
    assert width_distance(big, one_width) == pytest.approx(1 - 48 / 64)  # 64 -> 48 channels
    # dropping the 5th block of stage 1 (two convs at full width) costs 2 in width distance
    shallower = decode(_with(_with(_with(big.code, 1, "4"), 14, "0"), 15, "0"))
    assert width_distance(big, shallower) == pytest.approx(2.0)
    # group distance: depth digit differs (0.5) + two slot digits active->inactive (2 each)
    assert group_distance(big, shallower) == pytest.approx(4.5)
    assert group_distance(big, one_width) == pytest.approx(0.5)
    rng = random.Random(1)
    for _ in range(50):
        a, b = random_arch(rng), random_arch(rng)
        for f in (hamming_distance, width_distance, group_distance):
            assert f(a, b) == pytest.approx(f(b, a)) and f(a, b) >= 0


def test_a_huge_code_is_cut_in_the_message(capsys):
    """Issue 13, item 13: a 100,000-character code was echoed whole to stderr."""
    from track1.cli import main
    assert main(["info", "1" * 100_000]) == 2
    err = capsys.readouterr().err
    assert len(err) < 300 and "(99,942 more)" in err and "length is 100000" in err
