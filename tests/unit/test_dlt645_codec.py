"""DL/T 645-2007 frames against frames worked out by hand from the spec
(../shared/reference/meters.md, DL/T 645-2007 section).

The meter used throughout has address 000000123456: on the wire lowest byte first,
56 34 12 00 00 00. Checksums are summed by hand below, in hex, from the first 68 to the end
of DATA.
"""

from __future__ import annotations

import pytest

from device_profiles.dlt645 import ValueFormat, decode_bcd, encode_bcd
from edge_agent import dlt645_codec as c

pytestmark = pytest.mark.unit

ADDRESS = "000000123456"
A = bytes.fromhex("563412000000")


def frame(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# Read forward active total energy, DI 00 01 00 00.
#   DI little-endian: 00 00 01 00; +33 each: 33 33 34 33
#   CS: 68+56+34+12+00+00+00+68 = 16C; +11 = 17D; +04 = 181; +33+33+34+33 (CD) = 24E -> 4E
READ_IMPORT = frame("FE FE FE FE 68 56 34 12 00 00 00 68 11 04 33 33 34 33 4E 16")

# Its normal reply: 012345.67 kWh in XXXXXX.XX is BCD 01 23 45 67, lowest byte first
#   67 45 23 01, +33 each: 9A 78 56 34. L = 4 (DI) + 4 (value) = 08.
#   CS: 16C + 91 = 1FD; +08 = 205; +CD (the DI) = 2D2; +9A = 36C; +78 = 3E4; +56 = 43A;
#   +34 = 46E -> 6E
REPLY_IMPORT = frame("FE FE FE FE 68 56 34 12 00 00 00 68 91 08 33 33 34 33 9A 78 56 34 6E 16")

# Abnormal reply to a read: C = 91 | 40 = D1, one DATA byte, error 02 (no requested data) +33 = 35
#   CS: 16C + D1 = 23D; +01 = 23E; +35 = 273 -> 73
ABNORMAL_NO_DATA = frame("FE FE FE FE 68 56 34 12 00 00 00 68 D1 01 35 73 16")

# Read address to the broadcast address AA x6, no DATA.
#   CS: 68 + 6*AA (3FC) + 68 + 13 + 00 = 4DF -> DF
READ_ADDRESS = frame("FE FE FE FE 68 AA AA AA AA AA AA 68 13 00 DF 16")

# Its reply: C = 93, DATA = the address 56 34 12 00 00 00 +33 each: 89 67 45 33 33 33
#   CS: 16C + 93 = 1FF; +06 = 205; +89 = 28E; +67 = 2F5; +45 = 33A; +33*3 (99) = 3D3 -> D3
READ_ADDRESS_REPLY = frame("FE FE FE FE 68 56 34 12 00 00 00 68 93 06 89 67 45 33 33 33 D3 16")


def test_read_request_matches_the_hand_worked_frame():
    assert c.read_request(ADDRESS, "00010000") == READ_IMPORT


def test_replies_match_the_hand_worked_frames():
    value = encode_bcd(12345.67, ValueFormat.parse("XXXXXX.XX"), signed=False)
    assert value == bytes.fromhex("67452301")
    assert c.read_reply(A, "00010000", value) == REPLY_IMPORT
    assert c.abnormal_reply(A, c.READ_DATA, 0x02) == ABNORMAL_NO_DATA
    assert c.read_address_request() == READ_ADDRESS
    assert c.read_address_reply(A) == READ_ADDRESS_REPLY


def test_decoding_a_reply_removes_preamble_and_offset():
    found, used = c.find_frame(REPLY_IMPORT)
    assert used == len(REPLY_IMPORT)
    assert found is not None
    assert (found.address, found.control, found.is_reply, found.is_abnormal) == (
        A,
        0x91,
        True,
        False,
    )
    assert c.di_text(found.data[:4]) == "00010000"
    assert decode_bcd(found.data[4:], ValueFormat.parse("XXXXXX.XX"), signed=False) == 12345.67


def test_abnormal_reply_carries_its_error_byte():
    found, _ = c.find_frame(ABNORMAL_NO_DATA)
    assert found is not None and found.is_abnormal and found.function == c.READ_DATA
    assert found.data == b"\x02"
    assert "no requested data" in c.error_text(found.data[0])
    assert c.error_text(0x05) == "other error, password error or unauthorised"


def test_noise_and_bad_checksums_are_skipped():
    corrupt = bytearray(REPLY_IMPORT)
    corrupt[-2] ^= 0xFF  # checksum
    stream = b"\x00\x68\x12" + bytes(corrupt) + REPLY_IMPORT
    found, used = c.find_frame(stream)
    assert found is not None and used == len(stream)
    assert c.di_text(found.data[:4]) == "00010000"


def test_an_incomplete_frame_waits_for_more_bytes():
    for cut in range(1, len(REPLY_IMPORT)):
        found, used = c.find_frame(REPLY_IMPORT[:cut])
        assert found is None
        assert used <= 4, "the wake-up bytes may go; the frame from its first 68 is kept"


@pytest.mark.parametrize(
    ("address", "field"),
    [
        ("000000123456", "563412000000"),
        ("112233445566", "665544332211"),
        ("AAAAAAAAAAAA", "AA" * 6),
    ],
)
def test_address_is_bcd_lowest_byte_first(address, field):
    assert c.address_field(address) == bytes.fromhex(field)
    assert c.address_text(bytes.fromhex(field)) == address


@pytest.mark.parametrize("bad", ["12345", "00000012345A", "0000001234567"])
def test_bad_addresses_are_refused(bad):
    with pytest.raises(c.FrameError, match="12 decimal digits"):
        c.address_field(bad)


def test_di_goes_little_endian():
    assert c.di_field("02010100") == bytes.fromhex("00010102")
    assert c.di_text(bytes.fromhex("00010102")) == "02010100"
    with pytest.raises(c.FrameError):
        c.di_field("0201010")
