"""Tests for meddistill.data.dicom on real files from pydicom and pydicom-data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML

from meddistill.data import dicom
from meddistill.data.dicom import (
    WINDOW_PRESETS,
    DicomImage,
    apply_window,
    is_dicom,
    read_dicom_for_display,
    read_dicom_pixels,
)
from meddistill.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _file(name: str) -> str:
    """Path of a pydicom test file, or skip the test if it is not installed."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data)")
    return str(path)


def _syntax(path: str) -> str:
    return pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID.name


def _minmax(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float64)
    return np.rint((arr - arr.min()) * 255.0 / (arr.max() - arr.min())).astype(np.uint8)


def test_ct_modality_lut_gives_hounsfield_units():
    path = _file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    img = read_dicom_for_display(path)
    assert isinstance(img, DicomImage)
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (128, 128)
    np.testing.assert_array_equal(img.pixels, ds.pixel_array.astype(np.float32) - 1024)
    assert img.pixels.min() < -500 < 500 < img.pixels.max()  # air and bone in HU
    assert img.default_center is None and img.default_width is None
    assert img.image.dtype == np.uint8 and img.image.min() == 0 and img.image.max() == 255
    np.testing.assert_array_equal(read_dicom_pixels(path), img.image)


def test_mr_uses_the_files_own_window():
    path = _file("MR_small.dcm")
    img = read_dicom_for_display(path)
    assert img.image.shape == (64, 64) and img.image.dtype == np.uint8
    assert img.default_center is not None and img.default_width is not None
    np.testing.assert_array_equal(img.image, apply_window(img.pixels, img.default_center, img.default_width))
    assert img.metadata["Modality"] == "MR"


def test_monochrome1_is_inverted_so_higher_is_brighter():
    matches = [p for p in get_testdata_files("**/CR1/6154") if Path(p).name == "6154"]
    if not matches:
        pytest.skip("no MONOCHROME1 test file (dicomdirtests/77654033/CR1/6154) is installed")
    path = matches[0]
    assert pydicom.dcmread(path).PhotometricInterpretation == "MONOCHROME1"
    img = read_dicom_for_display(path)
    assert img.inverted
    expected = 255 - apply_window(img.pixels, img.default_center, img.default_width)
    np.testing.assert_array_equal(img.image, expected)
    hi, lo = (
        np.unravel_index(img.pixels.argmax(), img.pixels.shape),
        np.unravel_index(img.pixels.argmin(), img.pixels.shape),
    )
    assert img.image[hi] < img.image[lo]  # MONOCHROME1: the largest value is the darkest
    np.testing.assert_array_equal(img.render(1600, 2800), expected)


@pytest.mark.parametrize(
    ("name", "syntax_word"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS"),
        ("MR_small_jp2klossless.dcm", "JPEG 2000"),
        ("MR_small_RLE.dcm", "RLE"),
        ("MR_small_bigendian.dcm", "Big Endian"),
    ],
)
def test_lossless_compressed_mr_matches_uncompressed(name, syntax_word):
    path = _file(name)
    assert syntax_word in _syntax(path)
    np.testing.assert_array_equal(read_dicom_pixels(path), read_dicom_pixels(_file("MR_small.dcm")))


@pytest.mark.parametrize(
    ("name", "syntax_word"),
    [
        ("JPGExtended.dcm", "JPEG Extended"),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", "JPEG Lossless"),
        ("693_J2KI.dcm", "JPEG 2000"),
    ],
)
def test_other_compressed_monochrome_files_decode(name, syntax_word):
    path = _file(name)
    assert syntax_word in _syntax(path)
    image = read_dicom_pixels(path)
    assert image.dtype == np.uint8 and image.ndim == 2 and image.std() > 5


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_rgb_dcmtk_+eb+cy+np.dcm",
        "SC_rgb_rle.dcm",
        "SC_rgb_gdcm_KY.dcm",
        "SC_ybr_full_uncompressed.dcm",
        "SC_rgb_16bit.dcm",
    ],
)
def test_colour_files_give_rgb_matching_the_uncompressed_original(name):
    reference = read_dicom_pixels(_file("SC_rgb.dcm"))
    image = read_dicom_pixels(_file(name))
    assert image.shape == (100, 100, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - reference.astype(int)).mean() < 5  # YBR converted back to RGB


def test_palette_colour_gives_rgb():
    image = read_dicom_pixels(_file("examples_palette.dcm"))
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8 and image.max() > 0


def test_multiframe_gives_the_middle_frame():
    path = _file("emri_small.dcm")
    ds = pydicom.dcmread(path)
    assert int(ds.NumberOfFrames) == 10
    image = read_dicom_pixels(path)
    assert image.shape == (64, 64)
    np.testing.assert_array_equal(image, _minmax(ds.pixel_array[5]))
    assert read_dicom_pixels(_file("SC_rgb_2frame.dcm")).shape == (100, 100, 3)


def test_multiframe_ybr_jpeg_gives_one_rgb_frame():
    path = _file("examples_ybr_color.dcm")
    assert "JPEG Baseline" in _syntax(path)
    image = read_dicom_pixels(path)
    assert image.shape == (240, 320, 3) and image.max() > 100


def test_enhanced_ct_uses_per_frame_rescale_and_window():
    img = read_dicom_for_display(_file("eCT_Supplemental.dcm"))
    assert img.pixels.min() == -1024  # Rescale Intercept from the functional groups
    assert (img.default_center, img.default_width) == (49.0, 102.0)


@pytest.mark.parametrize("name", ["vlut_04.dcm", "mlut_18.dcm"])
def test_voi_and_modality_lut_sequences(name):
    ds = pydicom.dcmread(_file(name), stop_before_pixels=True)
    assert "VOILUTSequence" in ds or "ModalityLUTSequence" in ds
    image = read_dicom_pixels(_file(name))
    assert image.shape == (512, 512) and image.min() == 0 and image.max() == 255


def test_apply_window_golden_values():
    x = np.array([-1000, -161, -160, -159, 40, 239, 240, 1000], dtype=np.int16)
    np.testing.assert_array_equal(apply_window(x, 40, 400), [0, 0, 0, 1, 128, 255, 255, 255])
    np.testing.assert_array_equal(apply_window(np.array([0.4, 0.6]), 1, 1), [0, 255])
    assert apply_window(np.array([40.0]), 40, 400, "SIGMOID")[0] == 128
    assert apply_window(np.array([-160.0, 240.0]), 40, 400, "LINEAR_EXACT").tolist() == [0, 255]
    out = apply_window(np.zeros((3, 4, 3)), *WINDOW_PRESETS["Lung"])
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    with pytest.raises(ValueError):
        apply_window(x, 40, 0)


def test_window_presets():
    assert WINDOW_PRESETS["Lung"] == (-600, 1500)
    assert WINDOW_PRESETS["Mediastinum"] == WINDOW_PRESETS["Soft tissue"] == (40, 400)
    assert WINDOW_PRESETS["Bone"] == (400, 1800)
    assert WINDOW_PRESETS["Brain"] == (40, 80)
    assert WINDOW_PRESETS["Abdomen"] == (60, 400)


def test_display_with_a_given_window():
    path = _file("CT_small.dcm")
    img = read_dicom_for_display(path, *WINDOW_PRESETS["Bone"])
    np.testing.assert_array_equal(img.image, apply_window(img.pixels, 400, 1800))
    np.testing.assert_array_equal(img.render(400, 1800), img.image)
    with pytest.raises(DataError, match="CT_small.dcm"):
        read_dicom_for_display(path, 40, 0)


def test_metadata_is_safe():
    metadata = read_dicom_for_display(_file("CT_small.dcm")).metadata
    assert metadata["Modality"] == "CT" and metadata["TransferSyntax"] == "Explicit VR Little Endian"
    assert "PatientName" not in metadata and "CompressedSamples" not in " ".join(metadata.values())


def test_is_dicom(tmp_path):
    assert is_dicom(_file("CT_small.dcm"))
    text = tmp_path / "notes.dcm"
    text.write_text("hello " * 100)
    assert not is_dicom(text)
    assert not is_dicom(tmp_path / "missing.dcm")
    assert not is_dicom(tmp_path)


def test_text_file_renamed_dcm(tmp_path):
    path = tmp_path / "scan_014.dcm"
    path.write_text("patient notes, not an image\n" * 20)
    with pytest.raises(DataError, match=r"scan_014\.dcm is not a DICOM file"):
        read_dicom_pixels(path)


def test_dicom_without_pixel_data(tmp_path):
    ds = pydicom.dcmread(_file("CT_small.dcm"))
    del ds.PixelData
    path = tmp_path / "header_only.dcm"
    ds.save_as(path)
    with pytest.raises(DataError, match=r"header_only\.dcm has no pixel data"):
        read_dicom_pixels(path)


def test_truncated_dicom(tmp_path):
    data = Path(_file("CT_small.dcm")).read_bytes()
    path = tmp_path / "half.dcm"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"half\.dcm"):
        read_dicom_pixels(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match=r"gone\.dcm does not exist"):
        read_dicom_pixels(tmp_path / "gone.dcm")
    with pytest.raises(DataError, match="is a folder"):
        read_dicom_pixels(tmp_path)


def test_undecodable_transfer_syntax(tmp_path):
    ds = pydicom.dcmread(_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00" * 64])
    path = tmp_path / "video.dcm"
    ds.save_as(path)
    with pytest.raises(DataError, match=r"video\.dcm uses the MPEG2 .* uncompressed"):
        read_dicom_pixels(path)


def test_missing_decoder_names_the_package(monkeypatch):
    class _Unavailable:
        is_available = False

    monkeypatch.setattr(dicom, "get_decoder", lambda uid: _Unavailable())
    with pytest.raises(
        DataError, match=r"MR_small_jp2klossless\.dcm .*JPEG 2000.*pip install pylibjpeg pylibjpeg-openjpeg"
    ):
        read_dicom_pixels(_file("MR_small_jp2klossless.dcm"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=39_000), flips=st.lists(st.integers(0, 39_000), max_size=8))
def test_damaged_files_raise_only_data_error(cut, flips):
    data = bytearray(Path(_file("CT_small.dcm")).read_bytes())
    for i in flips:
        if i < len(data):
            data[i] ^= 0xFF
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "damaged.dcm")
        with open(path, "wb") as fh:
            fh.write(bytes(data[: len(data) - cut]))
        try:
            image = read_dicom_pixels(path)
        except DataError as exc:
            assert "damaged.dcm" in str(exc)
        else:
            assert image.dtype == np.uint8 and image.ndim in (2, 3)
