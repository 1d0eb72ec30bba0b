"""Which parameters of the NB201 supernet a step's paths give a gradient: what autograd
would say, computed from the archs alone (the static-graph step masks its update with it).

An op whose output cannot reach the loss (its node feeds only ``none`` edges), and
everything before a cell whose output is cut from its input, gets ``None`` gradients in
the plain single-path step, so it gets no update in the static-graph step either.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from track1.nb201.network import EDGES, NONE, OPS

N_EDGES, N_OPS = len(EDGES), len(OPS)
#: layout of the per-step selector vector a parameter's mask is gathered from
_SEL_LAST, _SEL_PRE = 0, N_EDGES * N_OPS
_SEL_CONNECTED, _SEL_ALWAYS = 2 * N_EDGES * N_OPS, 2 * N_EDGES * N_OPS + 1
SELECTOR_SIZE = 2 * N_EDGES * N_OPS + 2


@dataclass(frozen=True)
class CellFlow:
    """How gradient flows through one arch's cell (all cells share the arch)."""

    active: tuple[bool, ...]      # edge runs an op (not ``none``)
    to_output: tuple[bool, ...]   # edge's output reaches node 3 (its op gets gradient)
    connected: bool               # node 3 depends on node 0: gradient passes the cell


def cell_flow(arch: Sequence[int]) -> CellFlow:
    active = tuple(o != NONE for o in arch)
    reach = [False, False, False, True]          # node reaches the cell output
    for node in (2, 1, 0):
        reach[node] = any(active[e] and src == node and reach[dst]
                          for e, (dst, src) in enumerate(EDGES))
    depends = [True, False, False, False]        # node depends on the cell input
    for node in (1, 2, 3):
        depends[node] = any(active[e] and dst == node and depends[src]
                            for e, (dst, src) in enumerate(EDGES))
    return CellFlow(active, tuple(active[e] and reach[dst] for e, (dst, _) in enumerate(EDGES)),
                    depends[3])


def gradient_selector(archs: Sequence[Sequence[int]]) -> torch.Tensor:
    """The ``SELECTOR_SIZE`` 0/1 vector of what gets a gradient when ``archs`` all run
    in one step: [op of the last cell (6x5), op of an earlier cell (6x5), the layers before
    the last cell, the layers after it (always)]."""
    sel = torch.zeros(SELECTOR_SIZE)
    for arch in archs:
        flow = cell_flow(arch)
        for e, o in enumerate(arch):
            if flow.to_output[e]:
                sel[_SEL_LAST + e * N_OPS + o] = 1.0
                if flow.connected:
                    sel[_SEL_PRE + e * N_OPS + o] = 1.0
        if flow.connected:
            sel[_SEL_CONNECTED] = 1.0
    sel[_SEL_ALWAYS] = 1.0
    return sel


_EDGE_PARAM = re.compile(r"^cells\.(\d+)\.edges\.(\d+)\.(\d+)\.")


def parameter_selectors(supernet: nn.Module) -> dict[str, int]:
    """Parameter name -> its index in the selector vector."""
    last = len(supernet.cells) - 1
    out = {}
    for name, _ in supernet.named_parameters():
        m = _EDGE_PARAM.match(name)
        if m:
            cell, e, o = (int(g) for g in m.groups())
            out[name] = (_SEL_LAST if cell == last else _SEL_PRE) + e * N_OPS + o
        elif name.startswith(("stem.", "cells.")):
            out[name] = _SEL_CONNECTED
        else:                                   # lastact, classifier
            out[name] = _SEL_ALWAYS
    return out
