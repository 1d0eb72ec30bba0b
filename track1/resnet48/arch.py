"""The CVPR 2022 Track 1 search space (ResNet-48) and its 52-character arch code.

Code layout (docs/REFERENCE.md §1), 0-based indices::

    code[0]       image-size code, always '1' (224x224)
    code[1:5]     depth of stages 1-4: [2-5], [2-5], [2-8], [2-5]
    code[5]       stem width code, 1-7
    code[6:52]    23 block slots (5+5+8+5), two digits each: conv1 code, conv2 code;
                  a slot past its stage's depth is '00'.

Width codes 1..7 mean ratios 1.0, 0.95, ..., 0.7 of the stage's base width.

The official list lives in a *tied* sub-space: inside a stage every block has the
same conv2 code (the stage's output width), and stage 1's conv2 code equals the stem
code. ``decode(code)`` enforces the ties by default; ``decode(code, tied=False)``
accepts any well-formed code (costs can still be counted for it).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

from track1.infra.errors import UserError
from track1.infra.messages import clip

BASE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
STEM_BASE_WIDTH: int = 64
STRIDES: tuple[int, ...] = (1, 2, 2, 2)
MIN_DEPTHS: tuple[int, ...] = (2, 2, 2, 2)
MAX_DEPTHS: tuple[int, ...] = (5, 5, 8, 5)
WIDTH_RATIOS: tuple[float, ...] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7)
WIDTH_CODES: tuple[int, ...] = tuple(range(1, len(WIDTH_RATIOS) + 1))
IMAGE_SIZE_CODES: dict[int, int] = {1: 224}
CODE_LENGTH: int = 1 + len(MAX_DEPTHS) + 1 + 2 * sum(MAX_DEPTHS)  # 52
SLOT_OFFSET: int = 6  # code index of the first block slot


class ArchCodeError(UserError, ValueError):
    """A malformed or out-of-space arch code; the message names position and rule."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor`` as the competition's code does."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def channels(base: int, code: int) -> int:
    """Channel count of a conv whose stage base width is ``base`` and width code ``code``."""
    return make_divisible(base * WIDTH_RATIOS[code - 1])


@dataclass(frozen=True)
class ResNetArch:
    """One subnet: depths, stem width code and per-active-block (conv1, conv2) codes.

    ``blocks[s]`` has exactly ``depths[s]`` entries. Instances are hashable and
    compare by value; build them with ``decode`` or the space's samplers.
    """

    depths: tuple[int, ...]
    stem: int
    blocks: tuple[tuple[tuple[int, int], ...], ...]
    image_size_code: int = 1

    @property
    def code(self) -> str:
        return encode(self)

    @property
    def stem_channels(self) -> int:
        return channels(STEM_BASE_WIDTH, self.stem)

    def block_channels(self) -> list[list[tuple[int, int]]]:
        """Per stage, per active block: (conv1 channels, conv2 channels)."""
        return [[(channels(BASE_WIDTHS[s], c1), channels(BASE_WIDTHS[s], c2)) for c1, c2 in stage]
                for s, stage in enumerate(self.blocks)]

    def stage_out_channels(self) -> list[int]:
        return [stage[-1][1] for stage in self.block_channels()]

    def widths(self) -> dict[str, object]:
        """Channel counts in a JSON-friendly form (used by ``track1 info``)."""
        return {"stem": self.stem_channels,
                "stages": [[list(b) for b in stage] for stage in self.block_channels()]}

    def iter_blocks(self) -> Iterator[tuple[int, int, int, int]]:
        """Yield (stage, block index, conv1 code, conv2 code) for every active block."""
        for s, stage in enumerate(self.blocks):
            for j, (c1, c2) in enumerate(stage):
                yield s, j, c1, c2

    def __str__(self) -> str:
        return self.code


def _slot_index(stage: int, block: int) -> int:
    return SLOT_OFFSET + 2 * (sum(MAX_DEPTHS[:stage]) + block)


def _where(i: int) -> str:
    """Human description of code position ``i``."""
    if i == 0:
        return "image-size code"
    if 1 <= i <= 4:
        return f"depth of stage {i}"
    if i == 5:
        return "stem width code"
    slot, conv = divmod(i - SLOT_OFFSET, 2)
    for s, d in enumerate(MAX_DEPTHS):
        if slot < d:
            return f"stage {s + 1} block {slot + 1} conv{conv + 1} code"
        slot -= d
    return "past the end"


def _fail(code: str, i: int, rule: str) -> ArchCodeError:
    return ArchCodeError(f"bad arch code {clip(code)}: code[{i}] ({_where(i)}) is {code[i]!r}: {rule}")


def decode(code: str, tied: bool = True) -> ResNetArch:
    """Parse and validate a 52-character arch code.

    Raises ``ArchCodeError`` naming the first offending position and the rule it
    breaks. With ``tied=True`` (default) the code must lie in the official list's tied
    space (conv2 codes equal inside a stage, stage 1's equal to the stem code).
    """
    if not isinstance(code, str):
        raise ArchCodeError(f"arch code must be a string, got {type(code).__name__}")
    if len(code) != CODE_LENGTH:
        raise ArchCodeError(f"bad arch code {clip(code)}: length is {len(code)}, must be "
                            f"{CODE_LENGTH} (1 image-size + 4 depths + 1 stem + 23 slots x 2)")
    for i, ch in enumerate(code):
        if ch not in "0123456789":
            raise _fail(code, i, "every character must be a digit 0-9")
    if int(code[0]) not in IMAGE_SIZE_CODES:
        raise _fail(code, 0, f"image-size code must be one of {sorted(IMAGE_SIZE_CODES)}")
    depths = tuple(int(c) for c in code[1:5])
    for s, d in enumerate(depths):
        if not MIN_DEPTHS[s] <= d <= MAX_DEPTHS[s]:
            raise _fail(code, 1 + s, f"stage {s + 1} depth must be in "
                                     f"{MIN_DEPTHS[s]}..{MAX_DEPTHS[s]}")
    stem = int(code[5])
    if stem not in WIDTH_CODES:
        raise _fail(code, 5, f"width codes are 1..{len(WIDTH_CODES)}")
    blocks = []
    for s, d in enumerate(depths):
        stage = []
        for j in range(MAX_DEPTHS[s]):
            i = _slot_index(s, j)
            c1, c2 = int(code[i]), int(code[i + 1])
            if j < d:
                for k, c in ((i, c1), (i + 1, c2)):
                    if c not in WIDTH_CODES:
                        raise _fail(code, k, f"an active block (stage depth {d}) needs a "
                                             f"width code 1..{len(WIDTH_CODES)}, not 0")
                stage.append((c1, c2))
            else:
                for k, c in ((i, c1), (i + 1, c2)):
                    if c != 0:
                        raise _fail(code, k, f"slot past stage {s + 1}'s depth {d} must be '00'")
        if tied:
            want = stem if s == 0 else stage[0][1]
            source = "the stem code (code[5])" if s == 0 else f"block 1's conv2 code"
            for j, (_, c2) in enumerate(stage):
                if c2 != want:
                    raise _fail(code, _slot_index(s, j) + 1,
                                f"conv2 tie broken: every block of stage {s + 1} must share "
                                f"the stage's output width code, here {want} from {source}")
        blocks.append(tuple(stage))
    return ResNetArch(depths=depths, stem=stem, blocks=tuple(blocks),
                      image_size_code=int(code[0]))


def encode(arch: ResNetArch) -> str:
    """The 52-character code of ``arch`` (inverse of ``decode``)."""
    parts = [str(arch.image_size_code), "".join(str(d) for d in arch.depths), str(arch.stem)]
    for s, stage in enumerate(arch.blocks):
        for j in range(MAX_DEPTHS[s]):
            parts.append("%d%d" % stage[j] if j < len(stage) else "00")
    return "".join(parts)


def is_tied(arch: ResNetArch) -> bool:
    """True when ``arch`` lies in the official list's tied space."""
    for s, stage in enumerate(arch.blocks):
        want = arch.stem if s == 0 else stage[0][1]
        if any(c2 != want for _, c2 in stage):
            return False
    return True


# --------------------------------------------------------------------------- sampling
def build_arch(depths: tuple[int, ...], out_codes: tuple[int, ...],
               conv1_codes: tuple[tuple[int, ...], ...]) -> ResNetArch:
    """Assemble a tied arch: ``out_codes[s]`` is stage s's output code (stage 1's is the
    stem code); ``conv1_codes[s]`` lists the conv1 code of each active block."""
    blocks = tuple(tuple((c1, out_codes[s]) for c1 in conv1_codes[s][:depths[s]])
                   for s in range(len(depths)))
    return ResNetArch(depths=tuple(depths), stem=out_codes[0], blocks=blocks)


def largest_arch() -> ResNetArch:
    return build_arch(MAX_DEPTHS, (1,) * 4, tuple((1,) * d for d in MAX_DEPTHS))


def smallest_arch() -> ResNetArch:
    last = WIDTH_CODES[-1]
    return build_arch(MIN_DEPTHS, (last,) * 4, tuple((last,) * d for d in MIN_DEPTHS))


def random_arch(rng: random.Random) -> ResNetArch:
    """Uniform over the tied space's free variables: each depth, each stage's output
    width, each active block's conv1 width."""
    depths = tuple(rng.randint(lo, hi) for lo, hi in zip(MIN_DEPTHS, MAX_DEPTHS))
    outs = tuple(rng.choice(WIDTH_CODES) for _ in depths)
    conv1 = tuple(tuple(rng.choice(WIDTH_CODES) for _ in range(d)) for d in depths)
    return build_arch(depths, outs, conv1)


# -------------------------------------------------------------------------- distances
def hamming_distance(a: ResNetArch, b: ResNetArch) -> int:
    """The reference solution's distance: differing characters over code[5:]."""
    return sum(x != y for x, y in zip(encode(a)[5:], encode(b)[5:]))


def _slot_widths(arch: ResNetArch) -> list[float]:
    """Relative width (channels / base) of every conv slot, 0.0 where inactive."""
    out = [arch.stem_channels / STEM_BASE_WIDTH]
    for s, stage in enumerate(arch.block_channels()):
        for j in range(MAX_DEPTHS[s]):
            c1, c2 = stage[j] if j < len(stage) else (0, 0)
            out += [c1 / BASE_WIDTHS[s], c2 / BASE_WIDTHS[s]]
    return out


def width_distance(a: ResNetArch, b: ResNetArch) -> float:
    """Width-aware L1 distance: sum over conv slots of |relative width difference|.

    A width change 1.0 -> 0.7 costs 0.3; a block present in one arch and absent in the
    other costs about 2 (its two convs at their full relative width).
    """
    return sum(abs(x - y) for x, y in zip(_slot_widths(a), _slot_widths(b)))


def group_distance(a: ResNetArch, b: ResNetArch) -> float:
    """RD-NAS group distance (eq. 4) carried to this space.

    Per code position after the image-size code: 0 when equal; 0.5 when both choices
    are in the same group (two widths of an active conv, or two depths); 2 when one
    conv slot is active and the other skipped (different groups).
    """
    total = 0.0
    for x, y in zip(encode(a)[1:], encode(b)[1:]):
        if x == y:
            continue
        total += 2.0 if (x == "0") != (y == "0") else 0.5
    return total


DISTANCES = {"hamming": hamming_distance, "width": width_distance, "group": group_distance}
