"""Test helpers: small writers of raw event files (ATIS .bin, uncompressed AEDAT4), so tests
and benchmarks can build dataset copies and corrupt files; the suite itself only reads these."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from suite.data.events import AEDAT4_MAGIC, ATIS_BYTES_PER_EVENT, ATIS_OVERFLOW_Y


def _write(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_atis_bin(path: str | Path, events: np.ndarray) -> Path:
    """Write events (x, y < 256, y != 240, t < 2**23 µs) as an ATIS 40-bit .bin file."""
    x, y, t, p = (np.asarray(events[k], dtype=np.int64) for k in ("x", "y", "t", "p"))
    if len(t) and (x.min() < 0 or y.min() < 0 or x.max() > 255 or y.max() > 255
                   or np.any(y == ATIS_OVERFLOW_Y) or t.min() < 0 or t.max() >= 2**23):
        raise ValueError("ATIS .bin holds x, y in 0..255 (y != 240) and t in 0..2**23-1 µs")
    raw = np.empty((len(t), ATIS_BYTES_PER_EVENT), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = ((p & 1) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return _write(path, raw.tobytes())


def aedat4_description(width: int, height: int) -> str:
    return ('<dv version="2.0"><node name="outInfo" path="/outInfo/">'
            '<node name="0" path="/outInfo/0/">'
            '<attr key="compression" type="string">NONE</attr>'
            '<attr key="typeIdentifier" type="string">EVTS</attr>'
            '<node name="info" path="/outInfo/0/info/">'
            f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
            '</node></node></node></dv>')


def aedat4_header(description: str) -> bytes:
    # IOHeader flatbuffer: root offset, "IOHE", vtable (3 fields), table, description string
    text = description.encode()
    body = struct.pack("<I4s", 20, b"IOHE") + struct.pack("<5H", 10, 20, 4, 12, 8) + b"\0\0"
    body += struct.pack("<iiIq", 12, 0, 12, -1)  # vtable back-offset, NONE, string offset, no table
    body += struct.pack("<I", len(text)) + text + b"\0"
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<I", len(body)) + body


def aedat4_event_packet(events: np.ndarray, stream_id: int = 0) -> bytes:
    # size-prefixed EventPacket flatbuffer: elements is a vector of 16-byte Event structs
    packed = np.zeros(len(events), dtype=np.dtype(
        [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"), ("pad", "V3")]))
    packed["t"], packed["x"], packed["y"], packed["on"] = events["t"], events["x"], events["y"], events["p"]
    body = (struct.pack("<I4s", 16, b"EVTS") + struct.pack("<3H", 6, 8, 4) + b"\0\0"
            + struct.pack("<iI", 8, 4) + struct.pack("<I", len(events)) + packed.tobytes())
    body = struct.pack("<I", len(body)) + body
    return struct.pack("<II", stream_id, len(body)) + body


def write_aedat4(path: str | Path, events: np.ndarray, sensor: tuple[int, int],
                 packet_size: int = 4096) -> Path:
    """Write events as an uncompressed AEDAT4 file with one event stream of a width x height
    sensor (what CIFAR10-DVS uses); tonic.io.read_aedat4 reads it back."""
    data = AEDAT4_MAGIC + aedat4_header(aedat4_description(*sensor))
    data += b"".join(aedat4_event_packet(events[i:i + packet_size])
                     for i in range(0, len(events), packet_size))
    return _write(path, data)
