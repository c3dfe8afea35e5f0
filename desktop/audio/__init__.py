"""Audio adapters at the edge of the app: microphone, WAV file source, speaker, playback buffer.

No Qt here, and no asyncio in audio callbacks. `sounddevice` (PortAudio) is imported lazily by
devices.py, so importing this package works on a machine without PortAudio.
"""

from desktop.audio.capture import MicrophoneCapture
from desktop.audio.devices import (
    AudioDeviceError,
    DeviceStatus,
    list_devices,
    probe_devices,
    refresh_devices,
)
from desktop.audio.file_source import FileVoice, WavFileSource, read_wav_24k
from desktop.audio.playback import NullOutput, SpeakerOutput
from desktop.audio.playback_buffer import PlaybackBuffer, StopReport

__all__ = [
    "AudioDeviceError",
    "DeviceStatus",
    "MicrophoneCapture",
    "NullOutput",
    "PlaybackBuffer",
    "SpeakerOutput",
    "StopReport",
    "FileVoice",
    "WavFileSource",
    "list_devices",
    "probe_devices",
    "read_wav_24k",
    "refresh_devices",
]
