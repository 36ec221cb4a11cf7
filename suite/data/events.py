"""Raw event files: checked readers (through Tonic), one event dtype.

Readers call Tonic's own (`tonic.io.read_mnist_file` for ATIS .bin, `tonic.io.read_aedat4`
for AEDAT4, which needs the `aedat` package) after checking the file's framing in Python, so
a truncated or corrupt file becomes one SuiteError that names it, instead of an odd numpy
error, a Rust panic or a multi-gigabyte allocation. Every reader returns the same structured
array, `EVENT_DTYPE` (Tonic's N-MNIST / N-Caltech101 dtype: x, y, t in microseconds, p in
{0, 1}), sorted by time. (Writers for tests and benchmarks are in tests/support/event_files.py.)
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from suite.errors import SuiteError

EVENT_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])

ATIS_BYTES_PER_EVENT = 5
ATIS_OVERFLOW_Y = 240  # y value that marks a timestamp-overflow record in ATIS files
AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array in EVENT_DTYPE from four equal-length sequences."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def check_in_sensor(events: np.ndarray, sensor: tuple[int, int], path: str | Path, what: str = "") -> None:
    """Raise a SuiteError naming `path` if any event lies outside a width x height sensor."""
    width, height = sensor
    if len(events) == 0:
        return
    xs, ys = events["x"], events["y"]
    if xs.min() < 0 or ys.min() < 0 or xs.max() >= width or ys.max() >= height:
        raise SuiteError(
            f"{path}: events reach x={int(xs.max())}, y={int(ys.max())} (min {int(xs.min())}, "
            f"{int(ys.min())}), outside the {width}x{height} sensor{what} (wrong sensor or corrupt file)")


def _finish(events: np.ndarray, path: Path, sensor: tuple[int, int] | None) -> np.ndarray:
    if len(events) == 0:
        raise SuiteError(f"{path} holds no events (empty event stream)")
    if sensor is not None:
        check_in_sensor(events, sensor, path)
    if np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    return events


# ----------------------------------------------------------------------------- ATIS .bin
def read_atis_bin(path: str | Path, sensor: tuple[int, int] | None = None) -> np.ndarray:
    """Events of an ATIS 40-bit .bin file (N-MNIST, N-Caltech101) via tonic.io.read_mnist_file.

    Each event is 5 bytes: x (8 bits), y (8 bits), polarity (1 bit), timestamp (23 bits, µs);
    y == 240 marks a timestamp overflow. A length that is not a multiple of 5 is a truncated
    file; `sensor` (width, height) rejects events outside it.
    """
    import tonic.io

    path = Path(path)
    try:
        n_bytes = path.stat().st_size
    except OSError as exc:
        raise SuiteError(f"cannot read {path}: {exc.strerror}") from None
    if n_bytes % ATIS_BYTES_PER_EVENT:
        raise SuiteError(f"{path} is truncated or corrupt: {n_bytes} bytes is not a whole number "
                         f"of {ATIS_BYTES_PER_EVENT}-byte ATIS events")
    try:
        events = tonic.io.read_mnist_file(str(path), dtype=EVENT_DTYPE)
    except OSError as exc:
        raise SuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _finish(events, path, sensor)


# ----------------------------------------------------------------------------- AEDAT4
def _u32(buf: bytes, at: int) -> int:
    return struct.unpack_from("<I", buf, at)[0]


def _aedat4_ioheader(buf: bytes) -> tuple[int, int, str]:
    """(compression, data table position, description XML) from an IOHeader flatbuffer,
    every offset bounds-checked (struct.error / IndexError / ValueError on a broken one)."""
    root = _u32(buf, 0)
    vtable = root - struct.unpack_from("<i", buf, root)[0]
    vt_size = struct.unpack_from("<H", buf, vtable)[0]

    def field(i: int) -> int:  # offset of field i inside the table, 0 when absent
        return struct.unpack_from("<H", buf, vtable + 4 + 2 * i)[0] if 4 + 2 * i < vt_size else 0

    compression = struct.unpack_from("<i", buf, root + field(0))[0] if field(0) else 0
    table_pos = struct.unpack_from("<q", buf, root + field(1))[0] if field(1) else -1
    if not field(2):
        raise ValueError("no description")
    at = root + field(2)
    start = at + _u32(buf, at)
    length = _u32(buf, start)
    if start + 4 + length > len(buf):
        raise ValueError("description runs past the header")
    return compression, table_pos, buf[start + 4:start + 4 + length].decode("utf-8")


def _event_streams(description: str) -> dict[int, tuple[int, int]]:
    """{stream id: (width, height)} of the event (EVTS) streams an AEDAT4 description declares."""
    root = ET.fromstring(description)
    out_info = next((n for n in root if n.tag == "node" and n.get("name") == "outInfo"), None)
    if out_info is None:
        raise ValueError("no outInfo node")
    streams = {}
    for node in out_info:
        attrs = {a.get("key"): a.text for a in node if a.tag == "attr"}
        if attrs.get("typeIdentifier") != "EVTS":
            continue
        info = next((n for n in node if n.tag == "node" and n.get("name") == "info"), None)
        sizes = {a.get("key"): a.text for a in info if a.tag == "attr"} if info is not None else {}
        streams[int(node.get("name"))] = (int(sizes["sizeX"]), int(sizes["sizeY"]))
    return streams


def aedat4_event_stream(path: str | Path) -> tuple[int, tuple[int, int], int]:
    """Check an AEDAT4 file's framing without decoding events: returns (event stream id,
    declared (width, height), number of event packets). SuiteError naming the file on a
    missing magic number, a broken header, no event stream or a truncated packet."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            if f.read(len(AEDAT4_MAGIC)) != AEDAT4_MAGIC:
                raise SuiteError(f"{path} is not an AEDAT4 file (no #!AER-DAT4.0 magic number)")
            head = f.read(4)
            length = _u32(head, 0) if len(head) == 4 else size
            if len(AEDAT4_MAGIC) + 4 + length > size:
                raise SuiteError(f"{path} has a broken AEDAT4 header (header length {length} runs "
                                 f"past the end of the {size}-byte file)")
            try:
                compression, table_pos, description = _aedat4_ioheader(f.read(length))
                streams = _event_streams(description)
            except (struct.error, IndexError, ValueError, KeyError, TypeError, ET.ParseError) as exc:
                raise SuiteError(f"{path} has a broken AEDAT4 header ({exc or type(exc).__name__})") from None
            if compression not in range(5):
                raise SuiteError(f"{path} has a broken AEDAT4 header (unknown compression {compression})")
            if not streams:
                raise SuiteError(f"{path} has no event stream (AEDAT4 description declares no EVTS stream)")
            stream_id = min(streams)  # the stream tonic.io.read_aedat4 decodes
            pos, n_packets = len(AEDAT4_MAGIC) + 4 + length, 0
            while pos < size and pos != table_pos:
                f.seek(pos)
                head = f.read(8)
                if len(head) < 8:
                    raise SuiteError(f"{path} is truncated (packet header at byte {pos} cut short)")
                packet_stream, packet_len = struct.unpack("<II", head)
                if pos + 8 + packet_len > size:
                    raise SuiteError(f"{path} is truncated (packet at byte {pos} needs {packet_len} "
                                     f"bytes, the file ends {size - pos - 8} bytes later)")
                n_packets += packet_stream == stream_id
                pos += 8 + packet_len
    except OSError as exc:
        raise SuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    return stream_id, streams[stream_id], n_packets


def read_aedat4(path: str | Path, sensor: tuple[int, int] | None = None) -> np.ndarray:
    """Events of an AEDAT4 file (CIFAR10-DVS) via tonic.io.read_aedat4, after checking its framing.

    Events must lie inside the sensor the file declares and, when given, inside `sensor`
    (width, height), the dataset's sensor.
    """
    import tonic.io

    path = Path(path)
    _, declared, n_packets = aedat4_event_stream(path)
    if n_packets == 0:
        raise SuiteError(f"{path} holds no events (empty event stream)")
    try:
        raw = tonic.io.read_aedat4(str(path))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the aedat decoder raises RuntimeError or a Rust PanicException
        raise SuiteError(f"{path} is corrupt: the AEDAT4 decoder failed ({exc})") from None
    on = "on" if "on" in raw.dtype.names else "p"
    events = make_events(raw["x"], raw["y"], raw["t"], raw[on])
    check_in_sensor(events, declared, path, " the file declares")
    if sensor is not None and tuple(sensor) != tuple(declared):
        check_in_sensor(events, sensor, path, f" expected (the file declares {declared[0]}x{declared[1]})")
    return _finish(events, path, sensor)
