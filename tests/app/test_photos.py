"""Tests of app.photos: every image is generated here with Pillow; none is committed."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import random
import struct
import warnings
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageOps, ImageStat, PngImagePlugin
from PIL.JpegImagePlugin import JpegImageFile
from PIL.TiffImagePlugin import IFDRational

from app import photos
from app.errors import AppError, PhotoError
from benchmarks import photos as bench

CANARY = b"CANARY-1234-Maple-Lane-7f3a"
# Distinctive GPS rationals: 45 deg 28' 48.15163" N, 73 deg 34' 9.8767" W.
LATITUDE = ((45, 1), (28, 1), (4815163, 100000))
LONGITUDE = ((73, 1), (34, 1), (98767, 10000))
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="45,28.80N">'
    + CANARY
    + b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)
RED, GREEN, WHITE = (255, 0, 0), (0, 255, 0), (255, 255, 255)


def _exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = CANARY.decode()
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: tuple(IFDRational(*r) for r in LATITUDE),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: tuple(IFDRational(*r) for r in LONGITUDE),
    }
    return exif


def _gps_patterns() -> list[bytes]:
    return [
        struct.pack(f"{order}II", num, den)
        for order in "<>"
        for num, den in (LATITUDE[2], LONGITUDE[2])
    ]


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _scene(size: tuple[int, int]) -> Image.Image:
    """A gradient with a red block in the stored top-left corner."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste(RED, (0, 0, size[0] // 8, size[1] // 8))
    return image


def _pixel(data: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as image:
        value = image.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def _near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def _assert_clean(data: bytes) -> None:
    """Nothing but pixels: Pillow finds no metadata, and no tell-tale bytes are left."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert len(image.getexif()) == 0
        for key in ("exif", "xmp", "comment", "icc_profile", "XML:com.adobe.xmp"):
            assert key not in image.info
    for needle in (CANARY, b"Exif", b"http://ns.adobe.com/xap", b"ICC_PROFILE", *_gps_patterns()):
        assert needle not in data


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height; its pixels are never there."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _swapped_profile() -> bytes:
    """An ICC v2 RGB profile whose red and green primaries are sRGB's green and red."""

    def s15(*values: float) -> bytes:
        return b"".join(struct.pack(">i", round(v * 65536)) for v in values)

    def xyz(*values: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(*values)

    name = b"Swapped primaries test\0"
    tags = [
        (b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(name)) + name + bytes(12 + 67)),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"gXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        *[
            (kind, b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0233) + b"\0\0")
            for kind in (b"rTRC", b"gTRC", b"bTRC")
        ],
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for kind, data in tags:
        data += bytes(-len(data) % 4)
        table += kind + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I4sI4s4s4s", size, b"\0\0\0\0", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
        + bytes(12)
        + b"acsp"
        + bytes(28)
        + s15(0.9642, 1.0, 0.8249)
    )
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body


@pytest.fixture(scope="module")
def camera() -> bytes:
    """A 4000x3000 JPEG with orientation 6, GPS, XMP and a comment, all holding a canary."""
    data = _encode(_scene((4000, 3000)), "JPEG", quality=90, exif=_exif(6), xmp=XMP, comment=CANARY)
    for needle in (CANARY, b"Exif", b"http://ns.adobe.com/xap"):
        assert needle in data  # the input really carries what must go
    assert sum(pattern in data for pattern in _gps_patterns()) == 2  # one byte order
    return data


def test_camera_photo_is_upright_downscaled_and_stripped(camera: bytes) -> None:
    photo = photos.prepare(camera)
    assert (photo.width, photo.height) == (1200, 1600)
    assert (photo.thumbnail_width, photo.thumbnail_height) == (192, 256)
    for data, size in ((photo.jpeg, (1200, 1600)), (photo.thumbnail, (192, 256))):
        _assert_clean(data)
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == size
    # Orientation 6 turns the stored top-left corner into the top-right one.
    assert _near(_pixel(photo.jpeg, (1200 - 20, 20)), RED)
    assert not _near(_pixel(photo.jpeg, (20, 20)), RED)
    assert photo.sha256 == hashlib.sha256(photo.jpeg).hexdigest()
    assert photo.thumbnail_sha256 == hashlib.sha256(photo.thumbnail).hexdigest()
    assert photo.content_type == "image/jpeg"


def test_output_is_progressive_at_the_chosen_quality(camera: bytes) -> None:
    photo = photos.prepare(camera)
    reference = Image.open(io.BytesIO(_encode(Image.new("RGB", (8, 8)), "JPEG", quality=80)))
    with Image.open(io.BytesIO(photo.jpeg)) as image:
        assert image.info.get("progressive") or image.info.get("progression")
        assert isinstance(image, JpegImageFile) and isinstance(reference, JpegImageFile)
        assert image.quantization == reference.quantization  # the tables of quality 80


def test_camera_like_photo_sizes_are_within_bounds() -> None:
    photo = photos.prepare(bench.camera_jpeg(4))
    assert max(photo.width, photo.height) == photos.LONG_EDGE
    assert 50_000 < len(photo.jpeg) < 400_000
    assert 2_000 < len(photo.thumbnail) < 40_000


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(orientation: int) -> None:
    data = _encode(_scene((40, 20)), "PNG", exif=_exif(orientation))
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    with Image.open(io.BytesIO(photos.prepare(data).jpeg)) as image:
        assert image.size == expected.size
        difference = ImageStat.Stat(ImageChops.difference(image, expected)).mean
    assert max(difference) < 8


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {"exif": _exif(1), "xmp": XMP, "comment": CANARY}),
        ("WEBP", {"exif": _exif(1), "xmp": XMP, "lossless": True}),
        ("PNG", {"exif": _exif(1), "pnginfo": PngImagePlugin.PngInfo()}),
    ],
)
def test_metadata_is_stripped_from_every_accepted_format(
    fmt: str, params: dict[str, object]
) -> None:
    if fmt == "PNG":
        info = params["pnginfo"]
        assert isinstance(info, PngImagePlugin.PngInfo)
        info.add_text("Comment", CANARY.decode())
        info.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=False)
    data = _encode(_scene((300, 200)), fmt, **params)
    assert CANARY in data
    photo = photos.prepare(data)
    _assert_clean(photo.jpeg)
    _assert_clean(photo.thumbnail)


@pytest.mark.skipif("AVIF" not in photos.accepted_formats(), reason="Pillow cannot read AVIF")
def test_avif_is_accepted_and_stripped() -> None:
    photo = photos.prepare(_encode(_scene((300, 200)), "AVIF", exif=_exif(6), xmp=XMP))
    assert (photo.width, photo.height) == (200, 300)
    _assert_clean(photo.jpeg)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_on_white(mode: str) -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 32, 64))
    if mode == "P":
        image = image.convert("P")
        image.info["transparency"] = image.getpixel((63, 63))
    else:
        image = image.convert(mode)
    photo = photos.prepare(_encode(image, "PNG"))
    assert _near(_pixel(photo.jpeg, (56, 32)), WHITE)
    assert not _near(_pixel(photo.jpeg, (8, 32)), WHITE)


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = _encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG")
    photo = photos.prepare(data)
    assert _near(_pixel(photo.jpeg, (32, 24)), RED)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (32, 32), 32768)
    photo = photos.prepare(_encode(image, "PNG"))
    assert _near(_pixel(photo.jpeg, (16, 16)), (128, 128, 128), tolerance=4)


def test_one_pixel_image() -> None:
    photo = photos.prepare(_encode(Image.new("RGB", (1, 1), GREEN), "PNG"))
    assert (photo.width, photo.height, photo.thumbnail_width, photo.thumbnail_height) == (
        1,
        1,
        1,
        1,
    )


def test_long_thin_image_keeps_at_least_one_pixel() -> None:
    photo = photos.prepare(_encode(Image.new("L", (20_000, 2), 90), "PNG"))
    assert (photo.width, photo.height) == (1600, 1)
    assert (photo.thumbnail_width, photo.thumbnail_height) == (256, 1)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "MPO"])
def test_only_the_first_frame_is_used(fmt: str) -> None:
    # APNG and animated WebP; MPO is what many phone cameras write as ".jpg".
    frames = [Image.new("RGB", (2400, 1800), colour) for colour in (GREEN, RED)]
    data = _encode(frames[0], fmt, save_all=True, append_images=frames[1:], exif=_exif(6))
    with Image.open(io.BytesIO(data)) as image:
        assert getattr(image, "n_frames", 1) == 2
    photo = photos.prepare(data)
    assert (photo.width, photo.height) == (1200, 1600)
    assert _near(_pixel(photo.jpeg, (16, 16)), GREEN)
    _assert_clean(photo.jpeg)


def test_srgb_profile_is_dropped_and_a_broken_one_ignored() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (srgb, b"not a profile" * 20):
        data = _encode(Image.new("RGB", (32, 32), RED), "JPEG", icc_profile=icc)
        photo = photos.prepare(data)
        _assert_clean(photo.jpeg)
        assert _near(_pixel(photo.jpeg, (16, 16)), RED)


def test_other_profiles_are_converted_to_srgb() -> None:
    icc = _swapped_profile()
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    assert "Swapped" in description
    data = _encode(Image.new("RGB", (32, 32), RED), "PNG", icc_profile=icc)
    photo = photos.prepare(data)
    _assert_clean(photo.jpeg)
    assert _near(_pixel(photo.jpeg, (16, 16)), GREEN, tolerance=40)


def _refusal(data: bytes) -> PhotoError:
    with pytest.raises(PhotoError) as caught:
        photos.prepare(data)
    error = caught.value
    assert isinstance(error, AppError)
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    assert CANARY.decode() not in str(error)
    return error


def test_truncated_jpeg_is_refused() -> None:
    noisy = Image.frombytes("RGB", (400, 300), random.Random(1).randbytes(400 * 300 * 3))
    data = _encode(noisy, "JPEG", comment=CANARY)
    assert _refusal(data[: len(data) // 2]).reason == "damaged"


@pytest.mark.parametrize("side", [30_000, 10_000, 8_000])
def test_decompression_bombs_are_refused_from_the_header(side: int) -> None:
    # 900 MP (Pillow raises), 100 MP (Pillow warns), 64 MP (only our own limit).
    data = _png_header(side, side)
    assert len(data) < 200
    assert _refusal(data).reason == "too_many_pixels"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in an app that does not turn warnings to errors
        assert _refusal(data).reason == "too_many_pixels"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "unsupported"),
        (random.Random(7).randbytes(4096), "unsupported"),
        (_encode(Image.new("RGB", (16, 16), RED), "GIF"), "unsupported"),
        (_encode(Image.new("RGB", (16, 16), RED), "BMP"), "unsupported"),
        (_encode(Image.new("RGB", (16, 16), RED), "TIFF"), "unsupported"),
        (b"\xff\xd8\xff" + bytes(photos.MAX_INPUT_BYTES), "too_large"),
    ],
    ids=["empty", "pdf", "random", "gif", "bmp", "tiff", "over-30-MB"],
)
def test_other_inputs_are_refused(data: bytes, reason: str) -> None:
    assert _refusal(data).reason == reason


def _seeds() -> list[bytes]:
    image = _scene((48, 32))
    return [
        _encode(image, "JPEG", exif=_exif(6), progressive=True),
        _encode(image.convert("RGBA"), "PNG", exif=_exif(3)),
        _encode(image, "WEBP", exif=_exif(8)),
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_seeds()),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_damaged_files_give_a_photo_or_a_photo_error(
    seed: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(seed[: max(1, len(seed) - cut)])
    for position, value in edits:
        data[position % len(data)] = value
    try:
        photo = photos.prepare(bytes(data))
    except PhotoError:
        return
    _assert_clean(photo.jpeg)
    assert max(photo.width, photo.height) <= photos.LONG_EDGE


def test_prepared_photo_is_frozen_and_its_repr_has_no_pixels() -> None:
    photo = photos.prepare(_encode(_scene((64, 48)), "PNG"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        photo.width = 1  # type: ignore[misc]
    assert "jpeg=" not in repr(photo) and "thumbnail=" not in repr(photo)
    assert photo.sha256 in repr(photo)


def test_prepare_async_gives_the_same_result() -> None:
    data = _encode(_scene((640, 480)), "JPEG", exif=_exif(6))
    assert asyncio.run(photos.prepare_async(data)) == photos.prepare(data)


def test_benchmark_prints_its_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    result = bench.main(["--runs", "1", "--megapixels", "0.5"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == result
    for key in (
        "prepare_ms",
        "decode_only_ms",
        "ratio",
        "input_bytes",
        "output_bytes",
        "thumbnail_bytes",
    ):
        assert key in result
