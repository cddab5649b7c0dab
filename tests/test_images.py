"""Tests for meddistill.data.images: decoding, refusals and grey detection."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from meddistill.data.images import MAX_IMAGE_PIXELS, image_is_grey, read_image
from meddistill.errors import DataError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
GREY = RNG.integers(0, 256, (24, 32), dtype=np.uint8)


def save(im: Image.Image, path: Path, **kwargs) -> Path:
    im.save(path, **kwargs)
    return path


def encoded(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def patch_ihdr(png: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's declared size and fix the IHDR checksum."""
    assert png[12:16] == b"IHDR"
    data = struct.pack(">II", width, height) + png[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + data))
    return png[:16] + data + crc + png[33:]


def test_module_sets_pillow_limits() -> None:
    assert MAX_IMAGE_PIXELS == 89_478_485
    assert Image.MAX_IMAGE_PIXELS == MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_png_grey_and_rgb_round_trip_exactly(tmp_path: Path) -> None:
    grey = read_image(save(Image.fromarray(GREY), tmp_path / "g.png"))
    assert grey.dtype == np.uint8 and grey.shape == (24, 32)
    np.testing.assert_array_equal(grey, GREY)
    rgb = read_image(save(Image.fromarray(RGB), tmp_path / "c.png"))
    assert rgb.dtype == np.uint8 and rgb.shape == (24, 32, 3)
    np.testing.assert_array_equal(rgb, RGB)
    assert rgb.flags.c_contiguous and rgb.flags.writeable


def test_png_rgba_drops_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([RGB, np.full((24, 32), 7, np.uint8)])
    out = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, RGB)


def test_png_la_gives_grey(tmp_path: Path) -> None:
    out = read_image(save(Image.fromarray(GREY).convert("LA"), tmp_path / "la.png"))
    np.testing.assert_array_equal(out, GREY)


def test_png_palette_colour_and_grey(tmp_path: Path) -> None:
    colour = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    out = read_image(save(colour, tmp_path / "p.png"))
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.asarray(colour.convert("RGB")))
    grey = Image.fromarray(GREY // 32 * 32).convert("P")
    grey.putpalette([v for i in range(256) for v in (i, i, i)])
    assert read_image(save(grey, tmp_path / "gp.png")).shape == (24, 32)
    assert image_is_grey(tmp_path / "gp.png") is True
    assert image_is_grey(tmp_path / "p.png") is False


def test_one_bit_png(tmp_path: Path) -> None:
    out = read_image(save(Image.fromarray(GREY > 127), tmp_path / "b.png"))
    assert out.shape == (24, 32)
    assert set(np.unique(out)) <= {0, 255}


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_keeps_contrast(tmp_path: Path, suffix: str) -> None:
    values = np.linspace(100, 4095, 24 * 32).astype(np.uint16).reshape(24, 32)
    im = Image.fromarray(values)
    assert im.mode == "I;16"
    out = read_image(save(im, tmp_path / f"deep{suffix}"))
    assert out.dtype == np.uint8 and out.shape == (24, 32)
    assert out.min() == 0 and out.max() == 255  # min-max scaled, not divided by 257
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)
    assert image_is_grey(tmp_path / f"deep{suffix}") is True


def test_float_tiff_and_constant_image(tmp_path: Path) -> None:
    data = np.linspace(-1, 1, 24 * 32, dtype=np.float32).reshape(24, 32)
    out = read_image(save(Image.fromarray(data), tmp_path / "f.tif"))
    assert out.dtype == np.uint8 and (out.min(), out.max()) == (0, 255)
    flat = read_image(save(Image.fromarray(np.full((4, 4), 9, np.uint16)), tmp_path / "k.png"))
    assert flat.shape == (4, 4) and not flat.any()


def test_jpeg_rgb_grey_and_cmyk(tmp_path: Path) -> None:
    rgb = read_image(save(Image.fromarray(RGB), tmp_path / "c.jpg", quality=95))
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert read_image(save(Image.fromarray(GREY), tmp_path / "g.jpeg")).shape == (24, 32)
    cmyk = read_image(save(Image.fromarray(RGB).convert("CMYK"), tmp_path / "k.jpg"))
    assert cmyk.shape == (24, 32, 3)


def test_bmp(tmp_path: Path) -> None:
    out = read_image(save(Image.fromarray(RGB), tmp_path / "c.bmp"))
    np.testing.assert_array_equal(out, RGB)


def test_multipage_tiff_reads_first_page(tmp_path: Path) -> None:
    first = Image.fromarray(GREY)
    second = Image.fromarray(RGB).resize((10, 10))
    path = save(first, tmp_path / "multi.tiff", save_all=True, append_images=[second])
    with Image.open(path) as im:
        assert getattr(im, "n_frames", 1) == 2
    np.testing.assert_array_equal(read_image(path), GREY)


def test_image_is_grey(tmp_path: Path) -> None:
    assert image_is_grey(save(Image.fromarray(GREY), tmp_path / "g.png")) is True
    grey_rgb = Image.fromarray(np.dstack([GREY] * 3))
    assert image_is_grey(save(grey_rgb, tmp_path / "gr.png")) is True
    assert image_is_grey(save(grey_rgb, tmp_path / "gr.jpg", quality=80)) is True
    assert image_is_grey(save(Image.fromarray(RGB), tmp_path / "c.png")) is False
    assert image_is_grey(save(Image.fromarray(RGB), tmp_path / "c.jpg")) is False


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_image_refused_by_name(tmp_path: Path, monkeypatch, fmt, suffix) -> None:
    big = Image.fromarray(RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    data = encoded(big, fmt)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    # Even if some other code switched truncated loading on, it must be refused.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DataError, match=f"cut{suffix}.*truncated or corrupt"):
        read_image(path)
    with pytest.raises(DataError, match=f"cut{suffix}"):
        image_is_grey(path)


@pytest.mark.parametrize("side", [20_000, 10_000])
def test_decompression_bomb_refused_by_name(tmp_path: Path, side: int) -> None:
    png = patch_ihdr(encoded(Image.new("L", (8, 8)), "PNG"), side, side)
    path = tmp_path / "bomb.png"
    path.write_bytes(png)
    message = (
        f'Image "bomb.png" has {side * side} pixels, more than the limit of '
        f"{MAX_IMAGE_PIXELS}; downscale it before uploading."
    )
    with pytest.raises(DataError) as info:
        read_image(path)
    assert str(info.value) == message
    with pytest.raises(DataError, match="bomb.png.*downscale"):
        image_is_grey(path)


def test_own_pixel_limit_holds_even_if_pillow_limit_is_lifted(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = tmp_path / "huge.png"
    path.write_bytes(patch_ihdr(encoded(Image.new("L", (8, 8)), "PNG"), 20_000, 20_000))
    with pytest.raises(DataError, match='"huge.png" has 400000000 pixels'):
        read_image(path)


def test_zero_size_refused(tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(patch_ihdr(encoded(Image.new("L", (8, 8)), "PNG"), 0, 8))
    with pytest.raises(DataError, match="zero.png"):
        read_image(path)


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("notes.png", b"this is a text file, not a picture\n", "not a PNG, JPEG, BMP or TIFF"),
        ("empty.png", b"", "empty"),
        ("anim.png", None, "not a PNG, JPEG, BMP or TIFF"),
    ],
)
def test_non_images_refused_by_name(tmp_path: Path, name, content, match) -> None:
    path = tmp_path / name
    path.write_bytes(content if content is not None else encoded(Image.fromarray(RGB), "GIF"))
    with pytest.raises(DataError, match=match) as info:
        read_image(path)
    assert name in str(info.value)


def test_missing_file_and_folder_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="gone.png"):
        read_image(tmp_path / "gone.png")
    with pytest.raises(DataError, match="does not exist or is not a file"):
        read_image(tmp_path)


def _check_outcome(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(data)
        try:
            out = read_image(path)
        except DataError as exc:
            assert path.name in str(exc)
        else:
            assert isinstance(out, np.ndarray) and out.dtype == np.uint8
            assert out.ndim == 2 or (out.ndim == 3 and out.shape[2] == 3)
        try:
            assert image_is_grey(path) in (True, False)
        except DataError:
            pass


_SEEDS = {
    ".png": encoded(Image.fromarray(RGB[:8, :8]), "PNG"),
    ".jpg": encoded(Image.fromarray(RGB[:8, :8]), "JPEG"),
    ".tif": encoded(Image.fromarray(GREY[:8, :8]), "TIFF"),
    ".bmp": encoded(Image.fromarray(GREY[:8, :8]), "BMP"),
}
_hyp = settings(
    max_examples=int(os.environ.get("MD_HYP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_hyp
@given(st.binary(max_size=512), st.sampled_from(sorted(_SEEDS)))
def test_property_random_bytes(data: bytes, suffix: str) -> None:
    _check_outcome(data, suffix)


@_hyp
@given(st.sampled_from(sorted(_SEEDS)), st.data())
def test_property_mutated_valid_images(suffix: str, draw) -> None:
    raw = bytearray(_SEEDS[suffix])
    for pos, value in draw.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=6)):
        raw[pos] = value
    cut = draw.draw(st.integers(0, len(raw)))
    _check_outcome(bytes(raw[:cut]) if draw.draw(st.booleans()) else bytes(raw), suffix)
