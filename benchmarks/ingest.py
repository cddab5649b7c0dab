"""How fast does meddistill read image and DICOM folders, and does memory grow with the folder?

* JPEG: the real chest X-ray folder (224 px JPEGs, ``../shared/data/chest_xray``)
  through ``load_dataset`` and ``Batches`` (decode + grey/colour + resize +
  normalise, ``num_workers=0``), at 64 px (cpu preset) and 224 px.
* DICOM: every pydicom-data / pydicom test file meddistill can decode,
  copied into class folders in a temp dir, through the same path at 64 px.
* Memory: folders of 2,000 and 20,000 images (symlinks to the real chest
  X-ray JPEGs, cycled, in NORMAL/ and PNEUMONIA/), each loaded in a fresh
  subprocess with ``load_dataset`` and every batch of every split iterated at
  64 px; peak resident memory (``ru_maxrss``) is compared.

Run: ``python benchmarks/ingest.py`` (about 3 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import common

BATCH = 128


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.

    ``VmHWM`` from /proc, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``execve`` from the forked parent, so a child would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(folder: str, size: int) -> None:
    """Subprocess body: load a folder, iterate every batch of every split, print peak RSS as JSON."""
    import torch

    from meddistill.data import load_dataset
    from meddistill.data.tensors import Batches

    torch.set_num_threads(common.THREADS)
    after_import = _peak_rss_mb()
    start = time.perf_counter()
    dataset = load_dataset(folder)
    images = 0
    for split in dataset.splits.values():
        for batch, _, _ in Batches(split, dataset.channels, size).iterate(BATCH):
            images += len(batch)
    print(
        json.dumps(
            {
                "images": images,
                "seconds": time.perf_counter() - start,
                "after_import_mb": after_import,
                "peak_mb": _peak_rss_mb(),
            }
        )
    )


def make_folder(sources: dict[str, list[Path]], total: int, target: Path) -> Path:
    """``target/CLASS/`` with ``total`` symlinks to the source files, classes in their original proportion."""
    count = sum(len(files) for files in sources.values())
    for name, files in sources.items():
        (target / name).mkdir(parents=True)
        for i in range(round(total * len(files) / count)):
            source = files[i % len(files)]
            (target / name / f"{i:06d}_{source.name}").symlink_to(source)
    return target


def rate(batches, count: int) -> float:
    """Images per second through ``Batches.iterate`` for the first ``count`` images (after 1 warm-up batch)."""
    import torch

    order = torch.arange(min(count, len(batches)))
    next(iter(batches.iterate(16, order[:16])))
    start = time.perf_counter()
    seen = sum(len(images) for images, _, _ in batches.iterate(BATCH, order))
    return seen / (time.perf_counter() - start)


def dicom_folder(target: Path) -> tuple[Path, int, int, int]:
    """Copy every decodable test DICOM file into ``target/{A,B}/``: (folder, files, skipped, bytes)."""
    from pydicom.data import get_testdata_files

    from meddistill.data.folder import decode_file

    kept, skipped, size = 0, 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no network here: pydicom warns that it could not fetch more files
        names = sorted(get_testdata_files("*.dcm"))
    for name in names:
        path = Path(name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                decode_file(path)
        except Exception:  # DataError, or a decoder crash on a deliberately broken file
            skipped += 1
            continue
        out = target / ("A" if kept % 2 else "B") / f"{kept:03d}_{path.name}"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out)
        kept, size = kept + 1, size + path.stat().st_size
    return target, kept, skipped, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--jpegs", type=int, default=1500, help="JPEGs timed per size")
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 20000], help="folder sizes for the memory test")
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]))
    common.setup("ingest: decode + preprocess throughput and peak memory vs folder size")

    from meddistill.data import load_dataset
    from meddistill.data.tensors import Batches

    chest = common.data_file("chest_xray")
    xray = load_dataset(chest)
    rows = []
    for size in (64, 224):
        batches = Batches(xray.splits["train"], xray.channels, size)
        rows.append([f"chest X-ray JPEG 224 px -> {size} px", min(args.jpegs, len(batches)), rate(batches, args.jpegs)])

    with tempfile.TemporaryDirectory(prefix="meddistill-ingest-") as work:
        folder, files, skipped, nbytes = dicom_folder(Path(work) / "dicom")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dicom = load_dataset(folder)
            splits = list(dicom.splits.values())
            for batches in [Batches(s, dicom.channels, 64) for s in splits]:  # warm-up: decoders imported
                next(iter(batches.iterate(4)))
            start = time.perf_counter()
            for _ in range(3):
                for split in splits:
                    for _ in Batches(split, dicom.channels, 64).iterate(BATCH):
                        pass
            seconds = time.perf_counter() - start
        rows.append([f"DICOM ({files} files, {nbytes / 1e6:.1f} MB) -> 64 px", 3 * files, 3 * files / seconds])
        print(
            f"DICOM: {files} test files decoded (CT, MR, CR, US, SC; JPEG, JPEG-LS, JPEG 2000, RLE), {skipped} "
            "skipped (no pixel data or deliberately broken); "
            f"{3 * nbytes / 1e6 / seconds:.1f} MB/s"
        )
        print()
        common.table(["source", "images", "images/s"], rows, widths=[44, 7, 9])

        sources = {
            name: sorted(p for split in ("train", "test") for p in (chest / split / name).glob("*.jpeg"))
            for name in ("NORMAL", "PNEUMONIA")
        }
        memory = {}
        for total in args.sizes:
            root = make_folder(sources, total, Path(work) / f"f{total}")
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(root), "64"], capture_output=True, text=True, check=True
            )
            memory[total] = json.loads(out.stdout.strip().splitlines()[-1])
            shutil.rmtree(root)

    common.table(
        ["folder images", "iterated", "seconds", "img/s", "RSS after import MB", "peak RSS MB", "peak - import MB"],
        [
            [
                n,
                m["images"],
                m["seconds"],
                m["images"] / m["seconds"],
                m["after_import_mb"],
                m["peak_mb"],
                m["peak_mb"] - m["after_import_mb"],
            ]
            for n, m in memory.items()
        ],
        widths=[13, 9, 8, 7, 19, 11, 16],
    )
    small, large = (memory[n] for n in args.sizes)
    growth = large["peak_mb"] / small["peak_mb"]
    print(
        f"{args.sizes[1] // args.sizes[0]}x more images: peak RSS x{growth:.2f}, above the post-import baseline "
        f"x{(large['peak_mb'] - large['after_import_mb']) / max(small['peak_mb'] - small['after_import_mb'], 1e-9):.2f}"
    )
    common.ratio(growth)


if __name__ == "__main__":
    main()
