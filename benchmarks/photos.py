"""Benchmark of app.photos.prepare on a camera-like JPEG; the last line printed is JSON.

    python -m benchmarks.photos [--runs 7] [--megapixels 12]

The baseline ``decode_only_ms`` is a plain full Pillow decode of the same input in the same
run, so ``ratio`` is comparable across machines. Targets: output under 400 KB, prepare
under 400 ms for 12 MP.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw, ImageFilter, TiffImagePlugin

from app import photos


def camera_jpeg(megapixels: float, seed: int = 2026) -> bytes:
    """A 4:3 JPEG at quality 92 with gradients, shapes, texture, grain and camera EXIF."""
    width = max(8, round(math.sqrt(megapixels * 1e6 * 4 / 3)))
    height = max(6, round(width * 3 / 4))
    rng = random.Random(seed)
    ramp = Image.linear_gradient("L")
    image = Image.merge(
        "RGB",
        (
            ramp.resize((width, height)),
            Image.radial_gradient("L").resize((width, height)),
            ramp.rotate(90).resize((width, height)),
        ),
    )
    draw = ImageDraw.Draw(image)
    for _ in range(80):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(width // 40, width // 4), rng.randrange(height // 40, height // 4)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + w, y + h), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(2))  # a lens, not vector art
    # Texture (foliage, fabric) at a few pixels' scale plus fine sensor grain.
    texture = _noise(rng, (width // 3, height // 3)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    image = Image.blend(image, texture, 0.18)
    image = Image.blend(image, _noise(rng, (width, height)), 0.05)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=_camera_exif())
    return out.getvalue()


def _noise(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    bands = [Image.frombytes("L", size, rng.randbytes(size[0] * size[1])) for _ in range(3)]
    return Image.merge("RGB", bands)


def _camera_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    ratio = TiffImagePlugin.IFDRational
    exif[0x8825] = {1: "N", 2: (ratio(45, 1), ratio(30, 1), ratio(1234, 100))}
    return exif.tobytes()


def _median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _decode_only(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Run the benchmark, print a summary and the JSON line, and return the result."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photos")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each (median)")
    parser.add_argument("--megapixels", type=float, default=12.0, help="input size")
    args = parser.parse_args(argv)
    data = camera_jpeg(args.megapixels)
    photo = photos.prepare(data)  # warm-up: plugin imports, first-call costs
    _decode_only(data)
    prepare_ms = _median_ms(lambda: photos.prepare(data), args.runs)
    decode_ms = _median_ms(lambda: _decode_only(data), args.runs)
    with Image.open(io.BytesIO(data)) as source:
        width, height = source.size
    result: dict[str, object] = {
        "benchmark": "photos.prepare",
        "runs": args.runs,
        "input_width": width,
        "input_height": height,
        "input_bytes": len(data),
        "output_width": photo.width,
        "output_height": photo.height,
        "output_bytes": len(photo.jpeg),
        "thumbnail_bytes": len(photo.thumbnail),
        "prepare_ms": round(prepare_ms, 1),
        "decode_only_ms": round(decode_ms, 1),
        "ratio": round(prepare_ms / decode_ms, 2),
    }
    print(
        f"{width}x{height} {len(data) / 1e6:.1f} MB -> {photo.width}x{photo.height} "
        f"{len(photo.jpeg) / 1e3:.0f} KB in {prepare_ms:.0f} ms (decode alone {decode_ms:.0f} ms)"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
