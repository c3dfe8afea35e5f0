"""The protobuf wire format of ONNX model files, read and written without the `onnx` package.

Parley needs only a little of it: `silero_net` reads Silero VAD's weights out of its model file, and
`packaging/compact_voice.py` stores the Piper voice's weights as float16 in the installer. Both walk the
messages field by field (`fields`) and re-emit what they change (`field`, `varint`); everything they do not
touch is copied as the bytes it was.

ONNX field numbers used (onnx.proto3): ModelProto.graph = 7; GraphProto.node = 1, .initializer = 5,
.input = 11; NodeProto.input = 1, .output = 2, .name = 3, .op_type = 4, .attribute = 5; AttributeProto.name
= 1, .i = 3, .t = 5, .g = 6, .type = 20; TensorProto.dims = 1, .data_type = 2, .float_data = 4, .name = 8,
.raw_data = 9.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field as dataclass_field

__all__ = ["LENGTH_DELIMITED", "ModelFormatError", "TensorFields", "field", "fields", "raw_field", "read_varint",
           "string_field", "tensor_fields", "varint"]

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class ModelFormatError(RuntimeError):
    """The file is not the ONNX model that was expected (truncated, corrupt, or another model)."""


def read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of the base-128 varint at `pos`."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one protobuf message; value is an int or a memoryview."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED64:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == LENGTH_DELIMITED:
            size, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == FIXED32:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ModelFormatError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ModelFormatError("truncated message")
        yield number, wire, value


@dataclass
class TensorFields:
    """The fields of an ONNX TensorProto that Parley reads; `raw` and `float_data` are views into the file."""

    dims: list[int] = dataclass_field(default_factory=list)
    data_type: int | None = None
    name: str = ""
    raw: memoryview | None = None
    float_data: list[memoryview] = dataclass_field(default_factory=list)  # packed float_data chunks


def tensor_fields(buf: memoryview) -> TensorFields:
    """TensorProto: dims = 1 (packed or not), data_type = 2, float_data = 4, name = 8, raw_data = 9."""
    t = TensorFields()
    for number, wire, value in fields(buf):
        if number == 1:
            if wire == LENGTH_DELIMITED:
                p = 0
                while p < len(value):
                    d, p = read_varint(value, p)
                    t.dims.append(d)
            else:
                t.dims.append(value)
        elif number == 2:
            t.data_type = value
        elif number == 4 and wire == LENGTH_DELIMITED:
            t.float_data.append(value)
        elif number == 8 and wire == LENGTH_DELIMITED:
            t.name = bytes(value).decode("utf-8")
        elif number == 9 and wire == LENGTH_DELIMITED:
            t.raw = value
    return t


def string_field(buf: memoryview, number: int) -> str:
    """The first length-delimited field `number` of a message as text ('' when absent)."""
    return next((bytes(v).decode("utf-8") for f, w, v in fields(buf) if f == number and w == LENGTH_DELIMITED), "")


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # protobuf's two's complement for negative int64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number: int, value: int | bytes | bytearray | memoryview | str) -> bytes:
    """One encoded field: an int as a varint, anything else length-delimited."""
    if isinstance(value, int):
        return varint(number << 3 | VARINT) + varint(value)
    if isinstance(value, str):
        value = value.encode("utf-8")
    return varint(number << 3 | LENGTH_DELIMITED) + varint(len(value)) + bytes(value)


def raw_field(number: int, wire: int, value: int | memoryview) -> bytes:
    """A field as `fields` yielded it, encoded again unchanged (any wire type)."""
    key = varint(number << 3 | wire)
    if wire == VARINT:
        return key + varint(value)
    if wire == LENGTH_DELIMITED:
        return key + varint(len(value)) + bytes(value)
    return key + bytes(value)  # fixed 32 / 64 bit
