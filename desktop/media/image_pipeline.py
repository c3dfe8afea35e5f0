"""The one image pipeline: every image Parley sends — attached, dropped, pasted or grabbed from the screen —
goes through `prepare_image`.

What it does, in order: refuses what is not safe or not an image (size of the file, pixel count read from the
header before any decoding, damaged data), decodes the first frame (JPEG in draft mode at a reduced scale when
that is enough), applies the EXIF orientation, converts odd modes (palette, 16-bit, CMYK, alpha), downscales so
the long side fits the limit (1024 px by default; "high detail" raises it), and encodes as JPEG (quality 80 by
default, alpha flattened onto white) — or as PNG where that is smaller, which it usually is for screenshots of
text. The result must fit a maximum encoded size (a few MB: the realtime APIs have no documented limit and large
WebSocket messages have failed silently), else quality is lowered step by step, else it is refused.

Errors are `ImageError` with a message fit to show the user as it is. Pure CPU work with Pillow: callers run it
off the UI thread.
"""

from __future__ import annotations

import base64
import io
import math
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.conversation import ImageInfo
from ..core.events import image_part

try:  # HEIC/HEIF (and AVIF through libheif) via the maintained pillow-heif plugin; Pillow itself reads AVIF.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # the plugin is optional: everything else still works
    HEIF_SUPPORTED = False

#: What the file dialog offers and the messages name.
SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".avif") + ((".heic", ".heif") if HEIF_SUPPORTED else ())
FORMATS_TEXT = "PNG, JPEG, GIF, WebP, BMP, AVIF" + (", HEIC" if HEIF_SUPPORTED else "")

#: Sources whose pixels are likely to be text or flat graphics: PNG is tried as well as JPEG.
_LOSSLESS_SOURCES = {"PNG", "GIF", "BMP", "TIFF", "ICO", "PPM"}
#: JPEG qualities tried, after the configured one, when the encoded image is over the size limit.
_FALLBACK_QUALITIES = (60, 45, 30)


class ImageError(Exception):
    """An image that cannot be sent. `str(error)` is a complete sentence for the user."""


@dataclass(frozen=True)
class PipelineSettings:
    #: Longest side of the image sent, in pixels (the realtime lesson's 1024).
    max_side: int = 1024
    #: "High detail": the longest side allowed instead, and `detail: "high"` on the wire.
    high_detail: bool = False
    high_detail_max_side: int = 2048
    #: JPEG quality, 1..95.
    jpeg_quality: int = 80
    #: Try PNG too and keep it when smaller ("auto"), or always "jpeg" / "png".
    output_format: str = "auto"
    #: Refuse files larger than this before reading them.
    max_file_bytes: int = 64 * 1024 * 1024
    #: Refuse images with more pixels than this (decompression-bomb protection; a 24 MP photo passes).
    max_pixels: int = 64_000_000
    #: The encoded image must fit this (the engine accepts 32 MiB messages; OpenAI's limit is undocumented).
    max_encoded_bytes: int = 4 * 1024 * 1024

    @property
    def long_side(self) -> int:
        return self.high_detail_max_side if self.high_detail else self.max_side

    @property
    def detail(self) -> str | None:
        return "high" if self.high_detail else None

    def validated(self) -> "PipelineSettings":
        return replace(
            self,
            max_side=min(max(int(self.max_side), 64), 8192),
            high_detail_max_side=min(max(int(self.high_detail_max_side), 64), 8192),
            jpeg_quality=min(max(int(self.jpeg_quality), 1), 95),
            output_format=self.output_format if self.output_format in ("auto", "jpeg", "png") else "auto",
        )


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send: encoded bytes plus what the transcript shows."""

    data: bytes
    mime_type: str
    width: int
    height: int
    #: Size before downscaling (after EXIF orientation).
    source_width: int
    source_height: int
    #: Where it came from, for the transcript and messages: a file name, "clipboard", "screen".
    source: str
    detail: str | None = None

    @property
    def byte_count(self) -> int:
        return len(self.data)

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64," + base64.b64encode(self.data).decode("ascii")

    def content_part(self) -> dict[str, Any]:
        """The GA `input_image` content part."""
        return image_part(self.data_url(), self.detail)

    def info(self) -> ImageInfo:
        return ImageInfo(self.width, self.height, self.byte_count, self.mime_type, self.source)

    def describe(self) -> str:
        kb = self.byte_count / 1024
        size = f"{self.byte_count} bytes" if self.byte_count < 1024 else f"{kb:.0f} KB" if kb < 1024 else f"{kb / 1024:.1f} MB"
        return f"{self.width}×{self.height} px, {size} {self.mime_type.split('/')[1].upper()}"


# ---------------------------------------------------------------------------------------------- entry points
def prepare_file(path: str | os.PathLike[str], settings: PipelineSettings | None = None) -> PreparedImage:
    """An image file from disk (the attach button, a drop)."""
    settings = (settings or PipelineSettings()).validated()
    p = Path(path)
    name = p.name or str(p)
    try:
        size = p.stat().st_size
        if p.is_dir():
            raise ImageError(f"“{name}” is a folder, not an image.")
        if size > settings.max_file_bytes:
            raise ImageError(
                f"“{name}” is {size / 2**20:.0f} MB; Parley reads image files up to {settings.max_file_bytes / 2**20:.0f} MB."
            )
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"“{name}” is no longer there: it was moved or deleted.") from None
    except PermissionError:
        raise ImageError(f"Parley may not read “{name}” (permission denied).") from None
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(f"Could not read “{name}”: {exc.strerror or exc}.") from None
    return prepare_bytes(data, name, settings)


def prepare_bytes(data: bytes, source: str, settings: PipelineSettings | None = None, screenshot: bool = False) -> PreparedImage:
    """Encoded image bytes (a file's contents, clipboard data)."""
    settings = (settings or PipelineSettings()).validated()
    if not data:
        raise ImageError(f"“{source}” is empty: there is no image in it.")
    if len(data) > settings.max_file_bytes:
        raise ImageError(f"“{source}” is {len(data) / 2**20:.0f} MB; Parley reads images up to {settings.max_file_bytes / 2**20:.0f} MB.")
    with warnings.catch_warnings():
        # Our own pixel limit applies below; Pillow's warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(f"“{source}” is not an image Parley can read ({FORMATS_TEXT}).") from None
        except Image.DecompressionBombError:
            raise ImageError(f"“{source}” is far too large (more than {settings.max_pixels / 1e6:.0f} megapixels).") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"“{source}” looks damaged and cannot be read ({_reason(exc)}).") from None
        with image:
            fmt = image.format or ""
            w, h = image.size
            _check_pixels(w, h, source, settings)
            try:
                if getattr(image, "is_animated", False):
                    image.seek(0)  # the first frame of a GIF / WebP animation
                _draft(image, settings.long_side)
                image.load()
                oriented = ImageOps.exif_transpose(image) or image
            except Image.DecompressionBombError:
                raise ImageError(f"“{source}” is far too large (more than {settings.max_pixels / 1e6:.0f} megapixels).") from None
            except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
                raise ImageError(f"“{source}” looks damaged and cannot be read ({_reason(exc)}).") from None
            # EXIF rotation can swap the sides; draft decoding may have shrunk them.
            src_w, src_h = (h, w) if oriented.size[0] != image.size[0] and oriented.size[0] == image.size[1] else (w, h)
            return _finish(oriented, source, settings, screenshot or fmt in _LOSSLESS_SOURCES, (src_w, src_h))


def prepare_pil(image: Image.Image, source: str, settings: PipelineSettings | None = None, screenshot: bool = False) -> PreparedImage:
    """An already decoded image (a screen grab, a clipboard QImage converted by the UI)."""
    settings = (settings or PipelineSettings()).validated()
    w, h = image.size
    if w == 0 or h == 0:
        raise ImageError(f"The image from {source} is empty (0 pixels).")
    _check_pixels(w, h, source, settings)
    return _finish(image, source, settings, screenshot, (w, h), screen=screenshot)


def prepare_bgra(bgra: bytes, width: int, height: int, source: str = "screen", settings: PipelineSettings | None = None) -> PreparedImage:
    """Raw 32-bit BGRA(X) pixels as screen grabbers return them; treated as a screenshot (PNG tried)."""
    if width <= 0 or height <= 0 or len(bgra) < width * height * 4:
        raise ImageError(f"The grab of the {source} returned no pixels.")
    image = Image.frombuffer("RGB", (width, height), bgra, "raw", "BGRX", 0, 1)
    return prepare_pil(image, source, settings, screenshot=True)


# ---------------------------------------------------------------------------------------------- the steps
def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:120]


def _check_pixels(w: int, h: int, source: str, settings: PipelineSettings) -> None:
    if w <= 0 or h <= 0:
        raise ImageError(f"“{source}” has no pixels.")
    if w * h > settings.max_pixels:
        raise ImageError(
            f"“{source}” is {w}×{h} ({w * h / 1e6:.0f} megapixels); Parley accepts images up to "
            f"{settings.max_pixels / 1e6:.0f} megapixels. Scale it down first."
        )


def _target_size(w: int, h: int, long_side: int) -> tuple[int, int]:
    longest = max(w, h)
    if longest <= long_side:
        return w, h
    scale = long_side / longest
    return max(1, round(w * scale)), max(1, round(h * scale))


def _draft(image: Image.Image, long_side: int) -> None:
    """JPEG: let libjpeg decode at 1/2, 1/4 or 1/8 scale when the result is still at least the target size."""
    if image.format != "JPEG":
        return
    w, h = image.size
    tw, th = _target_size(w, h, long_side)
    if (tw, th) != (w, h):
        image.draft("RGB", (math.ceil(tw), math.ceil(th)))


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("RGB", "RGBA", "L"):
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        lo = float(arr.min()) if arr.size else 0.0
        span = hi - lo or 1.0
        return Image.fromarray(((arr - lo) * (255.0 / span)).astype(np.uint8), "L")
    if mode in ("1",):
        return image.convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode in ("LA", "PA", "RGBa", "La"):
        return image.convert("RGBA")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _flatten(image: Image.Image) -> Image.Image:
    """Alpha onto white, for JPEG."""
    if image.mode != "RGBA":
        return image
    alpha = image.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return image.convert("RGB")
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=alpha)
    return background


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    _flatten(image).save(buf, "JPEG", quality=quality, optimize=False, progressive=False)
    return buf.getvalue()


def _encode_png(image: Image.Image, level: int = 3) -> bytes:
    buf = io.BytesIO()
    # compress_level 3: most of level 6's size at a fraction of its time.
    image.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def _png_estimate(image: Image.Image) -> int:
    """Roughly how large the PNG would be: four bands (a quarter of the rows) encoded fast, times four."""
    w, h = image.size
    if h < 64:
        return len(_encode_png(image, 1))
    band = h // 16
    sample = Image.new(image.mode, (w, band * 4))
    for i in range(4):
        top = (h * (2 * i + 1)) // 8 - band // 2
        sample.paste(image.crop((0, top, w, top + band)), (0, band * i))
    return len(_encode_png(sample, 1)) * h // (band * 4)


def _finish(
    image: Image.Image, source: str, settings: PipelineSettings, text_like: bool, source_size: tuple[int, int], screen: bool = False
) -> PreparedImage:
    try:
        image = _to_rgb_or_rgba(image)
        w, h = image.size
        tw, th = _target_size(*source_size, settings.long_side)
        if max(w, h) > max(tw, th):
            tw, th = _target_size(w, h, settings.long_side)
            # For reductions of 3× or more (a 4K screen, a photo) Pillow first averages whole pixel blocks, leaving
            # ≥ 1.5× for the filter: 3.5× faster at 4K (measured), text intact. Screen grabs use (antialiased)
            # bilinear: on a 1080p screen of text it is 2-3× faster than Lanczos and OCR reads it as well
            # (0.999 vs 0.995 similarity to the true text, measured); photos keep Lanczos.
            gap = 1.5 if max(w, h) >= 3 * max(tw, th) else None
            resample = Image.Resampling.BILINEAR if screen else Image.Resampling.LANCZOS
            image = image.resize((tw, th), resample, reducing_gap=gap)
        candidates: list[tuple[bytes, str]] = []
        if settings.output_format in ("auto", "jpeg"):
            candidates.append((_encode_jpeg(image, settings.jpeg_quality), "image/jpeg"))
        if settings.output_format == "png" or (
            # PNG only where it is likely to win: estimated on a sample first, because it costs 10x a JPEG.
            settings.output_format == "auto" and text_like and _png_estimate(image) < 1.5 * len(candidates[0][0])
        ):
            candidates.append((_encode_png(image), "image/png"))
    except MemoryError:
        raise ImageError(f"“{source}” needs more memory than is available to convert.") from None
    except (OSError, ValueError) as exc:
        raise ImageError(f"“{source}” could not be converted ({_reason(exc)}).") from None
    data, mime = min(candidates, key=lambda c: len(c[0]))
    if len(data) > settings.max_encoded_bytes:
        for q in _FALLBACK_QUALITIES:
            if q >= settings.jpeg_quality:
                continue
            data, mime = _encode_jpeg(image, q), "image/jpeg"
            if len(data) <= settings.max_encoded_bytes:
                break
        else:
            raise ImageError(
                f"“{source}” is still {len(data) / 2**20:.1f} MB after compression; the limit is "
                f"{settings.max_encoded_bytes / 2**20:.0f} MB. Lower the size limit or turn off high detail."
            )
    return PreparedImage(
        data=data,
        mime_type=mime,
        width=image.size[0],
        height=image.size[1],
        source_width=source_size[0],
        source_height=source_size[1],
        source=source,
        detail=settings.detail,
    )
