"""The wire between the grader and a submission's child process.

A message is a JSON document plus the NumPy arrays it refers to, each array sent in NumPy's
own ``.npy`` format and read back with ``np.load(allow_pickle=False)``: no pickle crosses the
wire in either direction, so a submission can send the grader nothing but plain data.

Framing: an 8-byte big-endian length, then that many bytes of UTF-8 JSON; the JSON's ``"$n"``
says how many arrays follow, each as an 8-byte length and its ``.npy`` bytes. Every length is
checked against a limit before anything is read: per JSON document, per array, per message, and
(``Budget``) per child in all. An array's header is parsed here, its dtype must be numeric and
its shape must account for exactly the bytes that follow, before any memory is set aside for it.
Nothing a child sends can crash the grader: whatever does not follow the protocol is a
``ProtocolError``, which fails the item.

Values that travel:
    None, bool, int, float, str          as JSON
    numpy.ndarray                        {"$a": k}  (the k-th array after the JSON)
    numpy scalar (np.float64(1.0), ...)  {"$a": k, "$s": 1}
    tuple                                {"$t": [...]}
    list                                 [...]
    dict with str keys                   {"$d": {...}}
    NamedTuple                           {"$nt": class name, "$m": module, "$f": fields,
                                          "$v": values}
Anything else (an object, a function, an object array) is refused with a message that says
what it was.

This file imports only the standard library and NumPy: it is copied next to the child's
runner, where nothing else is importable.
"""

from __future__ import annotations

import io
import json
import math
import os
import select
import struct
import time
from collections import namedtuple

import numpy as np

MAX_JSON_BYTES = 1 << 20  # 1 MiB of JSON per message
MAX_ARRAY_BYTES = 4 << 20  # 4 MiB per array (a graded case's arrays are a few KiB)
MAX_MESSAGE_BYTES = 16 << 20  # 16 MiB per message, JSON and arrays together
MAX_CHILD_BYTES = 256 << 20  # 256 MiB from one child in all (see Budget)
MAX_ARRAYS = 4096
MAX_NDIM = 8
MAX_DEPTH = 32
MAX_NOTES, MAX_NOTE_CHARS = 20, 300  # what of a child's notes reaches a report
MAX_LINE_NUMBER = 10**7  # a frame's line number (no source file here is that long)
MAX_MESSAGE_CHARS = 500  # of an exception's message, as the student's feedback shows it
_LEN = struct.Struct(">Q")


class ProtocolError(Exception):
    """A message that does not follow the protocol (too large, malformed, not plain data)."""


class Budget:
    """The bytes one child may send in all; past them, every further message is refused."""

    def __init__(self, limit: int = MAX_CHILD_BYTES) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise ProtocolError(f"the child sent more than {self.limit >> 20} MiB in all")


def clean_text(value, limit: int = MAX_MESSAGE_CHARS, lines: bool = True) -> str:
    """A child's text as a report may show it: printable, at most ``limit`` characters, and
    on one line unless ``lines`` (a message may have several; a path or a name has one)."""
    text = value if isinstance(value, str) else ""
    keep = "\n" if lines else ""
    text = "".join(c if c.isprintable() or c in keep else "?" for c in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clean_notes(value) -> list[str]:
    """The notes of an answer: at most MAX_NOTES strings, each shortened; anything else
    dropped."""
    if not isinstance(value, list):
        return []
    return [clean_text(n, MAX_NOTE_CHARS) for n in value[:MAX_NOTES] if isinstance(n, str)]


def clean_error(value) -> dict | None:
    """An exception as a child describes it ({type, message, where, frames}), each field
    checked and shortened; None where it is not such a description."""
    if not isinstance(value, dict):
        return None
    frames = []
    for frame in value.get("frames") if isinstance(value.get("frames"), list) else []:
        if (isinstance(frame, (list, tuple)) and len(frame) == 4
                and isinstance(frame[1], int) and not isinstance(frame[1], bool)
                and 0 <= frame[1] <= MAX_LINE_NUMBER):
            frames.append([clean_text(frame[0], 100, lines=False), frame[1],
                           clean_text(frame[2], 100, lines=False),
                           clean_text(frame[3], 200, lines=False)])
    kind = clean_text(value.get("type"), 80, lines=False)
    return {"type": kind if kind.isidentifier() else "Error",
            "message": clean_text(value.get("message")),
            "where": clean_text(value.get("where"), 120, lines=False), "frames": frames[-8:]}


class ChannelClosed(ProtocolError):
    """The other side closed its end, or did not answer before the deadline."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


# -- values <-> JSON + arrays -------------------------------------------------------------------
def encode(value) -> tuple[dict, list[np.ndarray]]:
    """(JSON-ready document, arrays) for a value built of the types listed above."""
    arrays: list[np.ndarray] = []
    doc = _encode(value, arrays, 0, "value")
    return {"$n": len(arrays), "body": doc}, arrays


def _encode(value, arrays, depth, where):
    if depth > MAX_DEPTH:
        raise ProtocolError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject or array.dtype.kind not in "biufc":
            raise ProtocolError(
                f"{where} is an array of dtype {array.dtype}; only numeric arrays can be sent"
            )
        arrays.append(array)
        ref = {"$a": len(arrays) - 1}
        if isinstance(value, np.generic):
            ref["$s"] = 1
        return ref
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        fields = list(type(value)._fields)
        return {
            "$nt": type(value).__name__,
            "$m": type(value).__module__,
            "$f": fields,
            "$v": [_encode(v, arrays, depth + 1, f"{where}.{f}") for f, v in zip(fields, value)],
        }
    if isinstance(value, tuple):
        return {"$t": [_encode(v, arrays, depth + 1, f"{where}[{i}]")
                       for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, arrays, depth + 1, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise ProtocolError(f"{where} is a dict with a key of type "
                                    f"{type(key).__name__}; only str keys can be sent")
            out[key] = _encode(v, arrays, depth + 1, f"{where}[{key!r}]")
        return {"$d": out}
    raise ProtocolError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which cannot be "
        "sent back: return NumPy arrays, numbers, None, or tuples/lists of them"
    )


def decode(doc: dict, arrays: list[np.ndarray], resolve=None):
    """The value of an ``encode``d document.

    resolve(module, name, fields) -> a NamedTuple class, or None for a plain namedtuple of
    that name and those fields.
    """
    return _decode(doc["body"], arrays, resolve, 0)


def _decode(doc, arrays, resolve, depth):
    if depth > MAX_DEPTH:
        raise ProtocolError(f"a message is nested more than {MAX_DEPTH} levels deep")
    if doc is None or isinstance(doc, (bool, int, float, str)):
        return doc
    if isinstance(doc, list):
        return [_decode(v, arrays, resolve, depth + 1) for v in doc]
    if not isinstance(doc, dict):
        raise ProtocolError(f"unexpected JSON value of type {type(doc).__name__}")
    if "$a" in doc:
        index = doc["$a"]
        if not isinstance(index, int) or not 0 <= index < len(arrays):
            raise ProtocolError(f"array reference {index!r} out of range")
        array = arrays[index]
        return array[()] if doc.get("$s") else array
    if "$t" in doc:
        return tuple(_decode(v, arrays, resolve, depth + 1) for v in _list(doc["$t"]))
    if "$d" in doc:
        items = doc["$d"]
        if not isinstance(items, dict):
            raise ProtocolError("a dict must be sent as a JSON object")
        return {k: _decode(v, arrays, resolve, depth + 1) for k, v in items.items()}
    if "$nt" in doc:
        name, module, fields = doc["$nt"], doc.get("$m", ""), _list(doc.get("$f"))
        values = [_decode(v, arrays, resolve, depth + 1) for v in _list(doc.get("$v"))]
        if not (isinstance(name, str) and name.isidentifier() and isinstance(module, str)
                and len(fields) <= 64 and len(name) <= 100
                and all(isinstance(f, str) and f.isidentifier() for f in fields)
                and len(fields) == len(values)):
            raise ProtocolError(f"malformed named tuple {name!r}")
        cls = resolve(module, name, tuple(fields)) if resolve is not None else None
        if cls is None:
            cls = plain_namedtuple(name, tuple(fields))
        return cls(*values)
    raise ProtocolError(f"unknown JSON object with keys {sorted(doc)[:5]}")


def arrays_in(value) -> list:
    """The arrays (and NumPy scalars) of a value, in the order ``encode`` sends them; the same
    order on both sides of the wire, so that an index names the same argument on each."""
    found: list = []
    _collect(value, found, 0)
    return found


def _collect(value, found, depth) -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, (np.ndarray, np.generic)):
        found.append(value)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _collect(item, found, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found, depth + 1)


def _list(value) -> list:
    if not isinstance(value, list):
        raise ProtocolError(f"expected a JSON list, got {type(value).__name__}")
    return value


_PLAIN: dict[tuple, type] = {}


def plain_namedtuple(name: str, fields: tuple) -> type:
    """A namedtuple class for a name and fields, made once and reused."""
    key = (name, fields)
    cls = _PLAIN.get(key)
    if cls is None:
        cls = namedtuple(name, fields, rename=True)  # type: ignore[misc]
        if len(_PLAIN) < 256:  # a child inventing names does not grow the grader
            _PLAIN[key] = cls
    return cls


def array_to_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def array_from_bytes(data: bytes) -> np.ndarray:
    """A numeric array from ``.npy`` bytes, checked before any memory is set aside for it:
    the header must parse, the dtype must be numeric (no objects, no structured types), and
    the shape must account for exactly the bytes that follow."""
    from numpy.lib import format as npy

    stream = io.BytesIO(data)
    try:
        version = npy.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npy.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unknown .npy version {version}")
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as error:
        raise ProtocolError(f"an array could not be read as plain .npy: {error}") from None
    if dtype.hasobject or dtype.kind not in "biufc" or dtype.fields is not None \
            or dtype.subdtype is not None:
        raise ProtocolError(f"an array of dtype {dtype} was sent; only numeric arrays may be")
    if len(shape) > MAX_NDIM or any(not isinstance(n, int) or n < 0 for n in shape):
        raise ProtocolError(f"an array of shape {shape!r} was sent")
    count = math.prod(shape)
    body = data[stream.tell():]
    if count * dtype.itemsize != len(body):
        raise ProtocolError(f"an array of shape {shape} and dtype {dtype} came with "
                            f"{len(body)} bytes")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C").copy()


# -- framing over file descriptors ---------------------------------------------------------------
class Channel:
    """Messages over a pair of pipe file descriptors (one to read, one to write). A deadline is
    a time.monotonic() value, or None: wait for ever."""

    def __init__(self, read_fd: int, write_fd: int, budget: Budget | None = None) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.budget = budget

    def send(self, message: dict, arrays: list[np.ndarray] = (),
             deadline: float | None = None) -> None:
        """Send one message; with a deadline, a reader that stops reading cannot hold the
        sender past it: the write end must then be non-blocking."""
        data = json.dumps(dict(message, **{"$n": len(arrays)}), allow_nan=True).encode()
        chunks = [_LEN.pack(len(data)), data]
        for array in arrays:
            blob = array_to_bytes(array)
            chunks += [_LEN.pack(len(blob)), blob]
        view = memoryview(b"".join(chunks))
        while view:
            try:
                view = view[os.write(self.write_fd, view):]
            except BrokenPipeError:
                raise ChannelClosed("the other side closed the channel") from None
            except BlockingIOError:  # the pipe is full: wait until the reader takes some
                _wait(self.write_fd, True, deadline, "the other side stopped reading")

    def send_value(self, header: dict, value, deadline: float | None = None) -> None:
        """Send ``header`` with ``value`` encoded into it under "value"."""
        doc, arrays = encode(value)
        self.send(dict(header, value=doc["body"]), arrays, deadline)

    def recv(self, deadline: float | None = None) -> tuple[dict, list[np.ndarray]]:
        """(message, arrays), each length checked against its limit before what it announces
        is read, and spent from the budget."""
        size = self._length(MAX_JSON_BYTES, "a message", deadline)
        total = size
        self._spend(size)
        try:
            message = json.loads(self._read_exact(size, deadline))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise ProtocolError(f"a message is not JSON: {str(error)[:100]}") from None
        if not isinstance(message, dict):
            raise ProtocolError("a message must be a JSON object")
        count = message.get("$n", 0)
        if not isinstance(count, int) or not 0 <= count <= MAX_ARRAYS:
            raise ProtocolError(f"a message announces {count!r} arrays")
        arrays = []
        for _ in range(count):
            length = self._length(MAX_ARRAY_BYTES, "an array", deadline)
            total += length
            if total > MAX_MESSAGE_BYTES:
                raise ProtocolError(f"a message of more than {MAX_MESSAGE_BYTES} bytes")
            self._spend(length)
            arrays.append(array_from_bytes(self._read_exact(length, deadline)))
        return message, arrays

    def recv_value(self, deadline: float | None = None, resolve=None) -> tuple[dict, object]:
        """(message, decoded "value" or None)."""
        message, arrays = self.recv(deadline)
        value = None
        if "value" in message:
            try:
                value = decode({"body": message["value"]}, arrays, resolve)
            except (TypeError, ValueError, RecursionError) as error:
                raise ProtocolError(f"a value could not be decoded: {str(error)[:100]}") from None
        return message, value

    def _length(self, limit: int, what: str, deadline: float | None) -> int:
        size = _LEN.unpack(self._read_exact(_LEN.size, deadline))[0]
        if size > limit:
            raise ProtocolError(f"{what} of {size} bytes is over the {limit} limit")
        return size

    def _spend(self, size: int) -> None:
        if self.budget is not None:
            self.budget.spend(size)

    def _read_exact(self, size: int, deadline: float | None) -> bytes:
        parts, remaining = [], size
        while remaining:
            _wait(self.read_fd, False, deadline, "no answer before the time limit")
            chunk = os.read(self.read_fd, min(remaining, 1 << 20))
            if not chunk:
                raise ChannelClosed("the other side closed the channel")
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)


def _wait(fd: int, write: bool, deadline: float | None, why: str) -> None:
    """Until ``fd`` is ready to write (or to read); ChannelClosed, timed out, where the
    deadline comes first."""
    left = None if deadline is None else deadline - time.monotonic()
    if left is not None and left <= 0:
        raise ChannelClosed(why, timed_out=True)
    if not any(select.select([] if write else [fd], [fd] if write else [], [], left)):
        raise ChannelClosed(why, timed_out=True)
