"""Elliptic-curve arithmetic for PACE generic mapping (ICAO 9303 Part 11, 4.4.3.3.1).

``cryptography`` does ECDH only with a curve's standard generator; the generic mapping needs
G' = s·G + H, so points are computed here with Python integers (Jacobian coordinates). Only public
curve constants live in this module; tests check them against ``cryptography``'s own keys.
Not constant-time: acceptable for a kiosk reading a card in front of the citizen, noted in docs/card.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from drivers.card.errors import CardProtocolError

Point = tuple[int, int] | None  # None is the point at infinity


@dataclass(frozen=True)
class Curve:
    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    @property
    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8

    @property
    def g(self) -> Point:
        return (self.gx, self.gy)

    def contains(self, point: Point) -> bool:
        if point is None:
            return False
        x, y = point
        return (
            0 <= x < self.p and 0 <= y < self.p and (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0
        )

    def add(self, p1: Point, p2: Point) -> Point:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        (x1, y1), (x2, y2) = p1, p2
        if x1 == x2:
            if (y1 + y2) % self.p == 0:
                return None
            slope = (3 * x1 * x1 + self.a) * pow(2 * y1, -1, self.p)
        else:
            slope = (y2 - y1) * pow(x2 - x1, -1, self.p)
        x3 = (slope * slope - x1 - x2) % self.p
        return (x3, (slope * (x1 - x3) - y1) % self.p)

    def mul(self, k: int, point: Point) -> Point:
        """k·P with Jacobian coordinates (one inversion at the end)."""
        if point is None or k % self.n == 0:
            return None
        p = self.p
        x, y = point
        rx, ry, rz = 0, 1, 0  # infinity
        for bit in bin(k % self.n)[2:]:
            rx, ry, rz = self._double(rx, ry, rz)
            if bit == "1":
                rx, ry, rz = self._add_affine(rx, ry, rz, x, y)
        if rz == 0:
            return None
        zinv = pow(rz, -1, p)
        return (rx * zinv * zinv % p, ry * zinv * zinv * zinv % p)

    def _double(self, x: int, y: int, z: int) -> tuple[int, int, int]:
        p = self.p
        if z == 0 or y == 0:
            return 0, 1, 0
        yy = y * y % p
        s = 4 * x * yy % p
        zz = z * z % p
        m = (3 * x * x + self.a * zz * zz) % p
        x3 = (m * m - 2 * s) % p
        return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y * z % p

    def _add_affine(self, x1: int, y1: int, z1: int, x2: int, y2: int) -> tuple[int, int, int]:
        p = self.p
        if z1 == 0:
            return x2, y2, 1
        zz = z1 * z1 % p
        u2 = x2 * zz % p
        s2 = y2 * zz * z1 % p
        h = (u2 - x1) % p
        r = (s2 - y1) % p
        if h == 0:
            return self._double(x1, y1, z1) if r == 0 else (0, 1, 0)
        hh = h * h % p
        hhh = h * hh % p
        v = x1 * hh % p
        x3 = (r * r - hhh - 2 * v) % p
        return x3, (r * (v - x3) - y1 * hhh) % p, z1 * h % p

    def encode(self, point: Point) -> bytes:
        """Uncompressed point 04 || X || Y."""
        if point is None:
            raise CardProtocolError("EC: cannot encode the point at infinity")
        return b"\x04" + point[0].to_bytes(self.size, "big") + point[1].to_bytes(self.size, "big")

    def decode(self, data: bytes) -> Point:
        """Uncompressed point from the card, checked to lie on the curve (invalid-curve attacks)."""
        if len(data) != 1 + 2 * self.size or data[0] != 0x04:
            raise CardProtocolError("EC: point is not an uncompressed point of the right size")
        point = (int.from_bytes(data[1 : 1 + self.size], "big"), int.from_bytes(data[1 + self.size :], "big"))
        if not self.contains(point):
            raise CardProtocolError("EC: point is not on the curve")
        return point

    def random_scalar(self) -> int:
        return int.from_bytes(os.urandom(self.size + 8), "big") % (self.n - 1) + 1


NIST_P256 = Curve(
    "secp256r1",
    p=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    a=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
    b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    gx=0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    gy=0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
)

BRAINPOOL_P256R1 = Curve(
    "brainpoolP256r1",
    p=0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
    a=0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
    b=0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
    gx=0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
    gy=0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
    n=0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
)

#: PACE standardized domain parameter ids (ICAO 9303-11, table 6) we support
CURVES_BY_PARAMETER_ID = {12: NIST_P256, 13: BRAINPOOL_P256R1}
