"""DL/T 645-2007 frames: pure encoding and decoding, no I/O.

    FE FE FE FE | 68 | A0..A5 | 68 | C | L | DATA (L bytes) | CS | 16

- FE x4 wakes the line; it is skipped on receive and is not in the checksum.
- A0..A5: the meter address, 12 BCD digits, lowest byte first ("000000123456" -> 56 34 12 00 00 00).
- C: control code. Bit 7 set in a reply, bit 6 set in an abnormal reply, bit 5 = more frames follow;
  the low five bits are the function (0x11 read data, 0x13 read address).
- Every DATA byte travels +0x33 (mod 256). A read request's DATA is the data identifier (DI)
  DI0..DI3, i.e. "00010000" little-endian; a normal reply's DATA is the DI then the value.
- CS: sum mod 256 of every byte from the first 68 to the end of DATA.

Written here because the PyPI `dlt645` package logs and returns None on every failure (a timeout
and an abnormal reply look the same) and its server answers foreign addresses, which collides on
a shared RS-485 line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

START, END, WAKE = 0x68, 0x16, 0xFE
PREAMBLE = bytes([WAKE] * 4)
OFFSET = 0x33

READ_DATA = 0x11
READ_ADDRESS = 0x13
REPLY = 0x80
ABNORMAL = 0x40
FOLLOWS = 0x20
FUNCTION_MASK = 0x1F

BROADCAST = "AAAAAAAAAAAA"

# Error byte of an abnormal reply (DL/T 645-2007 7.2.2), one bit per cause
ERROR_BITS = {
    0x01: "other error",
    0x02: "no requested data (the meter does not have this DI)",
    0x04: "password error or unauthorised",
    0x08: "baud rate cannot be changed",
    0x10: "annual time zones exceeded",
    0x20: "daily time slots exceeded",
    0x40: "tariffs exceeded",
}


class FrameError(ValueError):
    pass


def address_field(address: str) -> bytes:
    """The 6 address bytes on the wire for 12 BCD digits (or AAAAAAAAAAAA, the broadcast)."""
    if not re.fullmatch(r"[0-9]{12}|[Aa]{12}", address):
        raise FrameError(f"address {address!r} is not 12 decimal digits like '000000123456'")
    return bytes(reversed(bytes.fromhex(address)))


def address_text(field: bytes) -> str:
    return bytes(reversed(field)).hex().upper()


def di_field(di: str) -> bytes:
    """DI '00010000' (DI3 DI2 DI1 DI0) as sent: DI0 first, before the +0x33 offset."""
    if not re.fullmatch(r"[0-9A-Fa-f]{8}", di):
        raise FrameError(f"di {di!r} is not 8 hex digits")
    return bytes(reversed(bytes.fromhex(di)))


def di_text(field: bytes) -> str:
    return bytes(reversed(field)).hex().upper()


def error_text(code: int) -> str:
    causes = [text for bit, text in ERROR_BITS.items() if code & bit]
    return ", ".join(causes) or "no cause given"


@dataclass(frozen=True, slots=True)
class Frame:
    address: bytes  # as on the wire, lowest byte first
    control: int
    data: bytes  # with the +0x33 offset removed

    @property
    def function(self) -> int:
        return self.control & FUNCTION_MASK

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY)

    @property
    def is_abnormal(self) -> bool:
        return bool(self.control & ABNORMAL)

    def encode(self, *, preamble: bool = True) -> bytes:
        if len(self.address) != 6:
            raise FrameError(f"an address has 6 bytes, not {len(self.address)}")
        if len(self.data) > 255:
            raise FrameError(f"DATA is at most 255 bytes, not {len(self.data)}")
        body = bytearray([START, *self.address, START, self.control, len(self.data)])
        body += bytes((b + OFFSET) & 0xFF for b in self.data)
        body += bytes([sum(body) & 0xFF, END])
        return (PREAMBLE if preamble else b"") + bytes(body)


def read_request(address: str, di: str) -> bytes:
    return Frame(address_field(address), READ_DATA, di_field(di)).encode()


def read_reply(address: bytes, di: str, value: bytes) -> bytes:
    return Frame(address, READ_DATA | REPLY, di_field(di) + value).encode()


def abnormal_reply(address: bytes, function: int, error: int) -> bytes:
    return Frame(address, function | REPLY | ABNORMAL, bytes([error])).encode()


def read_address_request() -> bytes:
    return Frame(address_field(BROADCAST), READ_ADDRESS, b"").encode()


def read_address_reply(address: bytes) -> bytes:
    return Frame(address, READ_ADDRESS | REPLY, address).encode()


def find_frame(buffer: bytes) -> tuple[Frame | None, int]:
    """The first valid frame in buffer and how many bytes to drop from its front.

    Returns (frame, end of that frame), or (None, n) where the first n bytes can never start a
    frame (wake-up bytes, noise, a frame with a wrong checksum) and the rest may still complete.
    """
    pos = 0
    while True:
        start = buffer.find(START, pos)
        if start < 0:
            return None, len(buffer)
        if len(buffer) - start < 12:
            return None, start
        length = buffer[start + 9]
        end = start + 12 + length
        if buffer[start + 7] != START:
            pos = start + 1
            continue
        if len(buffer) < end:
            return None, start
        cs, stop = buffer[end - 2], buffer[end - 1]
        if stop != END or cs != sum(buffer[start : end - 2]) & 0xFF:
            pos = start + 1
            continue
        data = bytes((b - OFFSET) & 0xFF for b in buffer[start + 10 : end - 2])
        return Frame(bytes(buffer[start + 1 : start + 7]), buffer[start + 8], data), end
