"""Photo pipeline: an untrusted image in, a small metadata-free JPEG and thumbnail out.

Accepted: JPEG (camera MPO files included), PNG, WebP, and AVIF or HEIF when this Pillow can
read them. GIF, PDF and everything else are refused. Of a file with several frames (MPO,
APNG, animated WebP) only the first, the primary picture, is used.

Only pixels survive. EXIF (GPS included), XMP, comments, text chunks and ICC profiles are
never copied; a non-sRGB profile is first applied to convert the colours to sRGB (untagged
JPEG is read as sRGB). Every refusal is one ``PhotoError`` whose message holds no image
data. The work is CPU-bound: callers on the UI thread use ``prepare_async``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass, field
from functools import cache

from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError, features

from app.errors import PhotoError

MAX_INPUT_BYTES = 30 * 1024 * 1024
MAX_PIXELS = 50_000_000  # checked from the header, before any pixel is decoded
LONG_EDGE = 1600
THUMBNAIL_EDGE = 256
QUALITY = 80
THUMBNAIL_QUALITY = 75
CONTENT_TYPE = "image/jpeg"
_TOO_MANY_PIXELS = f"The photo has more than {MAX_PIXELS // 1_000_000} megapixels."
_UNSUPPORTED = "This file is not a supported photo (JPEG, PNG or WebP)."

_CANDIDATE_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF", "HEIF")
_SIXTEEN_BIT = ("I", "I;16", "I;16L", "I;16B", "I;16N")
# The mapping of ImageOps.exif_transpose, applied here after the downscale (fewer pixels).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class PreparedPhoto:
    """A re-encoded photo and its thumbnail, ready to encrypt and store."""

    jpeg: bytes = field(repr=False)
    thumbnail: bytes = field(repr=False)
    width: int
    height: int
    thumbnail_width: int
    thumbnail_height: int
    sha256: str
    thumbnail_sha256: str
    content_type: str = CONTENT_TYPE


def prepare(data: bytes) -> PreparedPhoto:
    """Decode, orient, downscale and re-encode ``data``; raise ``PhotoError`` if unusable."""
    if not data:
        raise PhotoError("empty", "The photo is empty.")
    if len(data) > MAX_INPUT_BYTES:
        raise PhotoError("too_large", "The photo file is larger than 30 MB.")
    try:
        with Image.open(io.BytesIO(data), formats=accepted_formats()) as source:
            width, height = source.size
            if width * height > MAX_PIXELS:
                raise PhotoError("too_many_pixels", _TOO_MANY_PIXELS)
            picture = _decode(source)
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own limit (about 89 MP) is above ours, so its warning only ever fires for
        # images refused anyway; it is caught here in case warnings are errors.
        raise PhotoError("too_many_pixels", _TOO_MANY_PIXELS) from None
    except UnidentifiedImageError:
        raise PhotoError("unsupported", _UNSUPPORTED) from None
    except Exception:  # noqa: BLE001 - Pillow's plugins raise many types on hostile input
        # The cause is dropped on purpose: it could quote bytes of the file.
        raise PhotoError("damaged", "The photo could not be read; it may be damaged.") from None
    thumbnail = picture.resize(
        _fit(picture.size, THUMBNAIL_EDGE), Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    jpeg = _encode(picture, QUALITY)
    small = _encode(thumbnail, THUMBNAIL_QUALITY)
    return PreparedPhoto(
        jpeg=jpeg,
        thumbnail=small,
        width=picture.width,
        height=picture.height,
        thumbnail_width=thumbnail.width,
        thumbnail_height=thumbnail.height,
        sha256=hashlib.sha256(jpeg).hexdigest(),
        thumbnail_sha256=hashlib.sha256(small).hexdigest(),
    )


async def prepare_async(data: bytes) -> PreparedPhoto:
    """Run ``prepare`` in a worker thread (Pillow releases the GIL while it decodes)."""
    return await asyncio.to_thread(prepare, data)


@cache
def accepted_formats() -> tuple[str, ...]:
    """The Pillow formats this build can read and this app accepts."""
    Image.init()
    return tuple(name for name in _CANDIDATE_FORMATS if name in Image.OPEN)


def _decode(source: Image.Image) -> Image.Image:
    """Return the picture as sRGB RGB, upright, with its long edge at most LONG_EDGE."""
    orientation = _orientation(source)
    icc = source.info.get("icc_profile")
    target = _fit(source.size, LONG_EDGE)
    if target != source.size and source.format in ("JPEG", "MPO"):
        # libjpeg then decodes at 1/2, 1/4 or 1/8 scale, still at least `target`: far less work.
        source.draft(None, target)
    picture = _flatten(source)
    if picture.size != target:
        picture = picture.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    picture = _to_srgb(picture, icc if isinstance(icc, bytes) else None)
    if method := _TRANSPOSE.get(orientation):
        picture = picture.transpose(method)
    return picture


def _orientation(source: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1 when absent or unreadable."""
    try:
        value = source.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - broken EXIF: show the picture as stored
        return 1
    return value if isinstance(value, int) else 1


def _fit(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """``size`` scaled down (never up) so that its long edge is at most ``edge``."""
    width, height = size
    scale = edge / max(width, height)
    if scale >= 1:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def _flatten(image: Image.Image) -> Image.Image:
    """The picture as L, RGB or CMYK (for its ICC profile), transparency over white."""
    if image.mode in _SIXTEEN_BIT:
        # Pillow's I;16 -> L conversion clips at 255; scale the 16-bit range down instead.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.has_transparency_data:
        base = "L" if image.mode in ("L", "LA", "La") else "RGB"
        rgba = image.convert("RGBA")
        flat = Image.new(base, image.size, "white")
        flat.paste(rgba.convert(base), mask=rgba.getchannel("A"))
        return flat
    if image.mode in ("L", "RGB", "CMYK"):
        image.load()
        return image
    return image.convert("RGB")


def _to_srgb(picture: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert to sRGB RGB, through the ICC profile when there is one other than sRGB."""
    if icc and features.check_module("littlecms2"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if "sRGB" not in ImageCms.getProfileDescription(profile):
                converted = ImageCms.profileToProfile(picture, profile, _srgb(), outputMode="RGB")
                if converted is not None:
                    return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken or mismatched profile is dropped; the pixels stay as they are
    return picture if picture.mode == "RGB" else picture.convert("RGB")


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _encode(picture: Image.Image, quality: int) -> bytes:
    """JPEG bytes of the pixels alone: a fresh image carries no ``info`` to leak."""
    bare = Image.new("RGB", picture.size)
    bare.paste(picture)
    out = io.BytesIO()
    bare.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return out.getvalue()
