"""Sound devices as PortAudio (through `sounddevice`) sees them. No Qt.

`sounddevice` is imported lazily: importing it raises OSError when the PortAudio library is
missing, and the app must still start (and say so) on such a machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import ModuleType

log = logging.getLogger(__name__)

__all__ = [
    "AudioDeviceError",
    "DeviceStatus",
    "list_devices",
    "probe_devices",
    "refresh_devices",
    "sounddevice_module",
]


class AudioDeviceError(Exception):
    """A sound device could not be found or opened (or PortAudio itself is missing)."""


@dataclass
class DeviceStatus:
    input_name: str | None
    output_name: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.input_name is not None and self.output_name is not None and not self.problems

    @property
    def summary(self) -> str:
        """One line for a status bar: "mic: pulse · speaker: pulse" or what is wrong."""
        parts = []
        if self.input_name is not None:
            parts.append(f"mic: {self.input_name}")
        if self.output_name is not None:
            parts.append(f"speaker: {self.output_name}")
        parts.extend(self.problems)
        return " · ".join(parts) if parts else "no sound devices"


_sd: ModuleType | None = None
_sd_error: str | None = None


def sounddevice_module() -> ModuleType:
    """The `sounddevice` module, or AudioDeviceError when PortAudio cannot be loaded."""
    global _sd, _sd_error
    if _sd is not None:
        return _sd
    if _sd_error is not None:
        raise AudioDeviceError(_sd_error)
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio shared library is missing
        _sd_error = f"PortAudio library not found (install libportaudio2): {exc}"
        raise AudioDeviceError(_sd_error) from None
    _sd = sounddevice
    return sounddevice


def refresh_devices() -> None:
    """Make PortAudio enumerate the devices again (after a sound server started or a device appeared).

    Must not be called while streams are open.
    """
    sd = sounddevice_module()
    try:
        sd._terminate()
    finally:
        sd._initialize()


def _device_info(sd: ModuleType, device, kind: str) -> dict | None:
    """The device's info dict, or None when there is no such device of that kind."""
    try:
        info = sd.query_devices(device, kind=kind)
    except (ValueError, sd.PortAudioError):
        return None
    channels = info.get("max_input_channels" if kind == "input" else "max_output_channels", 0)
    return info if channels > 0 else None


def resolve_device(device, kind: str) -> dict:
    """Info of `device` (index, name or None = default) for `kind` ("input"/"output"), or AudioDeviceError."""
    sd = sounddevice_module()
    info = _device_info(sd, device, kind)
    if info is None:
        what = "microphone" if kind == "input" else "speaker"
        if device is None:
            raise AudioDeviceError(f"no {what} found")
        raise AudioDeviceError(f"{what} {device!r} not found")
    return info


def probe_devices(input_device=None, output_device=None) -> DeviceStatus:
    """Which microphone and speaker would be used. Never raises; problems are listed instead."""
    try:
        sd = sounddevice_module()
    except AudioDeviceError as exc:
        return DeviceStatus(None, None, [str(exc)])
    problems: list[str] = []
    names: list[str | None] = []
    for device, kind, what in ((input_device, "input", "microphone"), (output_device, "output", "speaker")):
        try:
            info = _device_info(sd, device, kind)
        except Exception as exc:  # noqa: BLE001 - a probe must never raise
            log.warning("probing %s failed: %s", kind, exc)
            info = None
        if info is None:
            names.append(None)
            problems.append(f"no {what} found" if device is None else f"{what} {device!r} not found")
        else:
            names.append(str(info["name"]))
    return DeviceStatus(names[0], names[1], problems)


def list_devices() -> tuple[list[str], list[str]]:
    """Names of the input devices and of the output devices ([] and [] without PortAudio)."""
    try:
        sd = sounddevice_module()
        devices = sd.query_devices()
    except Exception as exc:  # noqa: BLE001
        log.warning("listing sound devices failed: %s", exc)
        return [], []
    inputs = [str(d["name"]) for d in devices if d.get("max_input_channels", 0) > 0]
    outputs = [str(d["name"]) for d in devices if d.get("max_output_channels", 0) > 0]
    return inputs, outputs
