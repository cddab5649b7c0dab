"""Duplicate and leakage checks: the same scan in two splits makes the test figures measure memory.

* Exact duplicates: SHA-256 of the file (or of the pixel array for in-memory sets), within a split (copies with
  the same or with conflicting labels) and across splits.
* Near duplicates (the same image re-encoded or resized): Pearson correlation of the 16x16 grey thumbnails at or
  above ``NEAR_CORRELATION``, across splits; exact pairs are not counted again. On the chest X-ray set the most
  similar pair of distinct images correlates at 0.986, a JPEG re-encoded and resized copy at 0.9999 or more
  (docs/data.md); a 64-bit difference hash could not tell them apart (it paired most chest X-rays).
* Groups (patients) found in two splits the dataset gave.

``drop_leaks`` removes the val and test copies (``--drop-duplicates``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from meddistill.data.dataset import FileSplit, Split
from meddistill.data.images import IMAGE_SUFFIXES
from meddistill.io.weights import file_sha256

NEAR_CORRELATION = 0.995
THUMB = 24
EXAMPLES = 3
PAIRS = (("train", "val"), ("train", "test"), ("val", "test"))


@dataclass
class Fingerprints:
    """Per image of one split: content hash and normalised thumbnail."""

    exact: list[str]
    near: np.ndarray  # (N, THUMB * THUMB) float32, zero mean and unit norm per row


@functools.lru_cache(maxsize=200_000)
def _cached_sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


def file_digest(path) -> str:
    """SHA-256 of a file's bytes, computed once per path, modification time and size (loads, checks, dedupe)."""
    stat = os.stat(path)
    return _cached_sha256(str(path), stat.st_mtime_ns, stat.st_size)


def _exact(split: Split, index: int) -> str:
    if isinstance(split, FileSplit):
        return file_digest(split.paths[index])
    return hashlib.sha256(np.ascontiguousarray(split.image(index)).tobytes()).hexdigest()


def thumbnail(image: np.ndarray | Image.Image) -> np.ndarray:
    """(THUMB * THUMB,) float32: the grey thumbnail of a uint8 (H, W) or (H, W, 3) image (or a PIL image), zero
    mean, unit norm (a flat image gives zeros and matches nothing)."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    grey = picture.convert("L").resize((THUMB, THUMB), Image.Resampling.BILINEAR)
    small = np.asarray(grey, dtype=np.float32).ravel()
    small = small - small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-6 else np.zeros_like(small)


@functools.lru_cache(maxsize=100_000)
def _file_thumbnail(path: str, mtime_ns: int, size: int) -> np.ndarray | None:
    """The thumbnail of a PNG/JPEG/... file read at reduced scale (JPEG draft mode), or None if Pillow cannot."""
    try:
        with Image.open(path) as picture:
            picture.draft("L", (4 * THUMB, 4 * THUMB))
            return thumbnail(picture)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _thumbnail(split: Split, index: int) -> np.ndarray:
    if split.spatial_dims == 3:  # a volume: the thumbnail of its mean along the slice axis
        return thumbnail(np.round(split.image(index).astype(np.float32).mean(0)).astype(np.uint8))
    if isinstance(split, FileSplit) and split.paths[index].suffix.lower() in IMAGE_SUFFIXES:
        stat = os.stat(split.paths[index])
        found = _file_thumbnail(str(split.paths[index]), stat.st_mtime_ns, stat.st_size)
        if found is not None:
            return found
    return thumbnail(split.image(index))


def fingerprint(split: Split) -> Fingerprints:
    """Hashes and thumbnails of every image of a split (cached per file)."""
    exact = [_exact(split, i) for i in range(len(split))]
    near = np.stack([_thumbnail(split, i) for i in range(len(split))]) if len(split) else np.zeros((0, THUMB**2))
    return Fingerprints(exact, near.astype(np.float32))


def _near_pairs(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """(i, j): thumbnails a[i] and b[j] correlate at ``NEAR_CORRELATION`` or more (the best match per j)."""
    pairs = []
    for start in range(0, len(b), 512):
        block = a @ b[start : start + 512].T  # (len(a), <=512) correlations
        best = block.argmax(0) if len(a) else []
        for j, i in enumerate(best):
            if block[i, j] >= NEAR_CORRELATION:
                pairs.append((int(i), start + j))
    return pairs


@dataclass
class LeakReport:
    """What the checks found; ``summary()`` is what dataset.json, report.json, check-data and the Data page show."""

    within: dict[str, dict] = field(default_factory=dict)
    across: dict[str, dict] = field(default_factory=dict)
    near: dict[str, dict] = field(default_factory=dict)
    groups_across: dict[str, int] = field(default_factory=dict)
    copies: dict[str, set[int]] = field(default_factory=dict)  # val/test indices that copy an earlier split
    shared: dict[str, set[int]] = field(default_factory=dict)  # val/test indices whose patient is in an earlier split
    dropped: dict[str, int] = field(default_factory=dict)

    def leaked(self, split: str = "test") -> list[int]:
        """The indices of ``split``'s images that copy an image of an earlier split or share its patient (the
        leak-free figures leave them out)."""
        return sorted(self.copies.get(split, set()) | self.shared.get(split, set()))

    def summary(self) -> dict:
        return {
            "exact_within_split": self.within,
            "exact_across_splits": self.across,
            "near_across_splits": self.near,
            "near_method": f"{THUMB}x{THUMB} grey thumbnails correlating at {NEAR_CORRELATION} or more",
            "patients_in_two_splits": self.groups_across,
            "dropped": self.dropped,
            "leaked_test": self.leaked("test"),  # test indices with a copy or a patient in train or val
        }

    @property
    def leaks(self) -> int:
        return sum(v["count"] for v in self.across.values()) + sum(v["count"] for v in self.near.values())


def check(splits: dict[str, Split]) -> LeakReport:
    """Find exact and near duplicates within and across splits, and groups (``Split.groups``) in two splits.

    Args:
        splits: ``{"train": Split, "val": Split, "test": Split}``.
    """
    prints = {name: fingerprint(split) for name, split in splits.items()}
    report = LeakReport()
    for name, split in splits.items():
        seen: dict[str, int] = {}
        copies = conflicts = 0
        examples = []
        for i, digest in enumerate(prints[name].exact):
            if digest in seen:
                first = seen[digest]
                same = split.labels[first] == split.labels[i]
                copies, conflicts = copies + same, conflicts + (not same)
                if len(examples) < EXAMPLES:
                    examples.append([split.name(first), split.name(i)])
            else:
                seen[digest] = i
        if copies or conflicts:
            report.within[name] = {"count": copies, "conflicting_labels": conflicts, "examples": examples}
    for first, second in PAIRS:
        index = {digest: i for i, digest in enumerate(prints[first].exact)}
        exact = [(index[d], j) for j, d in enumerate(prints[second].exact) if d in index]
        near = [
            p
            for p in _near_pairs(prints[first].near, prints[second].near)
            if prints[first].exact[p[0]] != prints[second].exact[p[1]]
        ]
        for found, target in ((exact, report.across), (near, report.near)):
            held = sorted({j for _, j in found})
            if held:
                report.copies.setdefault(second, set()).update(held)
                target[f"{first}-{second}"] = {
                    "count": len(held),
                    "examples": [[splits[first].name(i), splits[second].name(j)] for i, j in found[:EXAMPLES]],
                }
        a, b = splits[first].groups, splits[second].groups
        if a is not None and b is not None:
            shared = {g for g in a if g} & {g for g in b if g}
            if shared:
                report.groups_across[f"{first}-{second}"] = len(shared)
                report.shared.setdefault(second, set()).update(j for j, g in enumerate(b) if g in shared)
    return report


def drop_leaks(splits: dict[str, Split], report: LeakReport) -> dict[str, Split]:
    """The splits without the val and test images that copy (exactly or nearly) an image of an earlier split."""
    out = dict(splits)
    for name, held in report.copies.items():
        keep = np.array([i for i in range(len(splits[name])) if i not in held], dtype=np.int64)
        out[name] = splits[name].subset(keep)
        report.dropped[name] = len(held)
        new = {int(old): i for i, old in enumerate(keep)}
        report.shared[name] = {new[i] for i in report.shared.get(name, set()) if i in new}
    report.copies = {}
    return out
