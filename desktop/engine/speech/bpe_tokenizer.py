"""Whisper's byte-level BPE tokenizer in pure Python: what faster-whisper asks of `tokenizers.Tokenizer`.

faster-whisper loads `tokenizer.json` with the Rust `tokenizers` package (11 MB in the installer) and calls
only `token_to_id`, `encode(text, add_special_tokens=False).ids` and `decode(ids)`. `ByteLevelBPETokenizer`
does the same from the same file: GPT-2's pre-tokenizer pattern (with exact Unicode letter and number
classes, built from `unicodedata`), the byte-to-character table, BPE merges by rank, and the added
(special) tokens, which are matched whole before anything else and left out of `decode`.

`install_if_missing()` puts a small `tokenizers` module offering `Tokenizer.from_file` in `sys.modules` when the
real package is not installed (the installer bundle leaves it out). tests/test_bpe_tokenizer.py checks ids
and text against the Rust tokenizer on varied text.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import types
import unicodedata
from dataclasses import dataclass
from pathlib import Path


@functools.lru_cache(maxsize=1)
def _byte_to_char() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


#: Letters and numbers end in plane 3 (CJK extensions); planes 4-16 hold none (tags and private use only).
_LAST_LETTER_OR_NUMBER_PLANE_END = 0x40000


def _class(prefix: str) -> str:
    """A regex character class of every code point whose Unicode category starts with `prefix`."""
    ranges: list[tuple[int, int]] = []
    for cp in range(_LAST_LETTER_OR_NUMBER_PLANE_END):
        if unicodedata.category(chr(cp)).startswith(prefix):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


@functools.lru_cache(maxsize=1)
def _pretokenizer() -> re.Pattern[str]:
    """GPT-2's split: 's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"""
    letters, numbers = _class("L"), _class("N")
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^\s{letters}{numbers}]+|\s+(?!\S)|\s+")


@dataclass
class Encoding:
    ids: list[int]


class ByteLevelBPETokenizer:
    def __init__(self, spec: dict) -> None:
        model = spec.get("model") or {}
        if model.get("type") != "BPE" or (spec.get("pre_tokenizer") or {}).get("type") != "ByteLevel":
            raise ValueError("not a byte-level BPE tokenizer.json")
        self.vocab: dict[str, int] = dict(model["vocab"])
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.added = {t["content"]: int(t["id"]) for t in spec.get("added_tokens", [])}
        self.special_ids = {int(t["id"]) for t in spec.get("added_tokens", []) if t.get("special")}
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.added.items()})
        self._added_split = (re.compile("(" + "|".join(map(re.escape, sorted(self.added, key=len, reverse=True))) + ")")
                             if self.added else None)
        self._b2c = _byte_to_char()
        self._c2b = {c: b for b, c in self._b2c.items()}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> ByteLevelBPETokenizer:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def token_to_id(self, token: str) -> int | None:
        return self.added.get(token, self.vocab.get(token))

    def _bpe(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        while len(parts) > 1:
            best = min(((self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))))
            if best[0] == 1 << 30:
                break
            i = best[1]
            a, b = parts[i], parts[i + 1]
            merged: list[str] = []
            j = 0
            while j < len(parts):  # merge every occurrence of the pair, left to right
                if j < len(parts) - 1 and parts[j] == a and parts[j + 1] == b:
                    merged.append(a + b)
                    j += 2
                else:
                    merged.append(parts[j])
                    j += 1
            parts = merged
        ids = [self.vocab[p] for p in parts]
        if len(self._cache) < 20000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str, add_special_tokens: bool = True) -> Encoding:
        ids: list[int] = []
        chunks = self._added_split.split(text) if self._added_split else [text]
        for k, chunk in enumerate(chunks):
            if k % 2 == 1 and self._added_split is not None:
                ids.append(self.added[chunk])
                continue
            for piece in _pretokenizer().findall(chunk):
                ids.extend(self._bpe("".join(self._b2c[b] for b in piece.encode("utf-8"))))
        return Encoding(ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        out: list[str] = []
        pending = bytearray()
        for i in ids:
            i = int(i)
            token = self.id_to_token.get(i)
            if token is None:
                continue
            if i in self.special_ids or (token in self.added and token not in self.vocab):
                if skip_special_tokens and i in self.special_ids:
                    continue
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
                out.append(token)
                continue
            pending.extend(self._c2b[c] for c in token)
        out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)


def install_if_missing() -> bool:
    """Make `import tokenizers` give this tokenizer when the real package is absent. True if it was installed."""
    try:
        import tokenizers  # noqa: F401

        return False
    except ImportError:
        pass
    module = types.ModuleType("tokenizers")
    module.Tokenizer = ByteLevelBPETokenizer
    module.__doc__ = "Parley's pure-Python stand-in (desktop/engine/speech/bpe_tokenizer.py)."
    sys.modules["tokenizers"] = module
    return True
