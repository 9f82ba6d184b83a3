"""Signed distances of the part shapes and defect marks, in a part's unit frame.

Every function takes ``u, v`` (float32 arrays of any one shape, usually ``(n, P, P)``): pixel
centres rotated into the part's frame and divided by its radius, so the part fits the unit
disk. It returns the signed distance in the same units (negative inside). Boxes use the cheap
Chebyshev form, exact inside and on edges, which is all anti-aliasing needs.

Silhouettes are chosen to differ at a radius of six pixels: a bolt is long and thin, a gear is
a toothed disk with a small hole, a bracket an L, a nut a hexagon with a mid-size hole, a
washer a thin ring, a spring a zigzag band. Defects sit at a per-shape anchor on the body.
This module only computes distances; colours and compositing live in ``scenes``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Sdf = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _box(u: np.ndarray, v: np.ndarray, cu: float, cv: float, hu: float, hv: float) -> np.ndarray:
    return np.maximum(np.abs(u - cu) - hu, np.abs(v - cv) - hv)


def _rho(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v)


def bolt(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    head = _box(u, v, -0.72, 0.0, 0.26, 0.5)
    shaft = _box(u, v, 0.27, 0.0, 0.73, 0.2)
    return np.minimum(head, shaft)


def gear(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    rho = _rho(u, v)
    d = rho - 0.7
    for ang in (0.0, np.pi / 3, 2 * np.pi / 3):  # three bars through the hub = six teeth
        c, s = np.float32(np.cos(ang)), np.float32(np.sin(ang))
        d = np.minimum(d, _box(c * u + s * v, c * v - s * u, 0.0, 0.0, 0.97, 0.17))
    return np.maximum(d, 0.24 - rho)


def bracket(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    top = _box(u, v, 0.0, 0.62, 0.85, 0.21)
    side = _box(u, v, -0.64, 0.0, 0.21, 0.83)
    return np.minimum(top, side)


def nut(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # exact hexagon distance (inradius 0.8) by folding into one sector, minus a round hole
    kx, ky, kz, r = -0.8660254, 0.5, 0.57735027, 0.8
    au, av = np.abs(u), np.abs(v)
    fold = 2.0 * np.minimum(kx * au + ky * av, 0.0)
    pu, pv = au - fold * kx, av - fold * ky
    pu = pu - np.clip(pu, -kz * r, kz * r)
    pv = pv - r
    hexa = np.sqrt(pu * pu + pv * pv) * np.sign(pv)
    return np.maximum(hexa, 0.34 - _rho(u, v))


def washer(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    rho = _rho(u, v)
    return np.maximum(rho - 0.95, 0.6 - rho)


def spring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    amp, omega = 0.45, np.float32(2 * np.pi / 0.9)  # two coil turns along u in [-0.9, 0.9]
    slope = amp * omega * np.cos(omega * u)
    band = np.abs(v - amp * np.sin(omega * u)) / np.sqrt(1.0 + slope * slope) - 0.16
    return np.maximum(band, np.abs(u) - 0.9)


SHAPE_FNS: tuple[Sdf, ...] = (bolt, gear, bracket, nut, washer, spring)  # index = shape code
# defect anchor (u, v) on each shape's body, where the body runs along v (as the marks do)
ANCHORS = np.array(
    [(-0.72, 0.0), (0.47, 0.0), (-0.64, 0.0), (0.57, 0.0), (0.78, 0.0), (0.0, 0.0)],
    dtype=np.float32,
)


def scratch(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
    across = np.abs(0.949 * du - 0.316 * dv) - 0.12  # a straight line along (1, 3)
    return np.maximum(across, np.abs(0.316 * du + 0.949 * dv) - 0.7)


def dent(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
    return _rho(du, dv) - 0.3


def crack(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
    t = dv * 2.0
    tri = 4.0 * np.abs(t - np.floor(t + 0.5)) - 1.0  # triangle wave in [-1, 1]
    return np.maximum(np.abs(du - 0.17 * tri) - 0.11, np.abs(dv) - 0.7)


DEFECT_FNS: tuple[Sdf | None, ...] = (None, scratch, dent, crack)  # index = defect code
# defect pixel colour = part · MUL + 255 · ADD: scratches are light, dents dark, cracks near black
DEFECT_MUL = np.array([1.0, 0.3, 0.4, 0.1], dtype=np.float32)
DEFECT_ADD = np.array([0.0, 0.7, 0.0, 0.0], dtype=np.float32)
