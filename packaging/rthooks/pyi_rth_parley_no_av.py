# PyInstaller run-time hook: the bundle leaves out PyAV (`av`, ~105 MB with its FFmpeg libraries).
# faster-whisper imports it at module level but uses it only to decode audio *files*; Parley hands it
# PCM arrays. This placeholder satisfies the import and fails clearly if file decoding is ever asked for.
import sys
import types


class _NoPyAV(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError(
            "this Parley bundle does not include PyAV (av): decoding audio files with faster-whisper is not "
            "available; pass PCM arrays instead"
        )


if "av" not in sys.modules:
    sys.modules["av"] = _NoPyAV("av")
