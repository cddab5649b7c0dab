"""Patient-level splits: the images of one patient never straddle train, val and test.

Group keys come from a labels CSV's group column, from a regular expression over file names
(``--group-pattern``), or, for DICOM, from the header: PatientID, falling back to StudyInstanceUID, then
SeriesInstanceUID (de-identified files keep consistent pseudonymous UIDs, so they still group). Keys are
pseudonymised with a hash as soon as they are read and only their counts are ever stored.

Held-out splits are made with scikit-learn's ``StratifiedGroupKFold`` (stratified by class as far as the groups
allow, seeded); without group keys, image by image with ``stratified_split``.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from sklearn.model_selection import StratifiedGroupKFold

from meddistill.data.dataset import stratified_split
from meddistill.errors import DataError

DICOM_LEVELS = (("PatientID", "patient"), ("StudyInstanceUID", "study"), ("SeriesInstanceUID", "series"))
DUMMY_IDS = {"", "ANONYMIZED", "ANONYMOUS", "UNKNOWN", "NONE"}  # what de-identification leaves in PatientID


@dataclass
class GroupKeys:
    """One pseudonymous key per image (None: the image is its own group) and where the keys came from."""

    keys: list[str | None]
    source: str  # "csv column 'patient_id'", "file-name pattern ...", "DICOM header (patient 40, study 2)"

    def codes(self) -> np.ndarray:
        """(N,) int64 group codes; images without a key get a group of their own."""
        codes, table = np.empty(len(self.keys), dtype=np.int64), {}
        for i, key in enumerate(self.keys):
            codes[i] = table.setdefault(key if key is not None else f"\0{i}", len(table))
        return codes


def pseudonym(value: str) -> str:
    """A short one-way hash of an identifier (kept in memory only)."""
    return hashlib.sha256(f"meddistill-group|{value}".encode()).hexdigest()[:16]


def pattern_keys(paths: list[Path], pattern: str) -> GroupKeys:
    """Keys from the first group of ``pattern`` searched in each file name.

    Raises:
        DataError: a file name the pattern does not match.
    """
    compiled = re.compile(pattern)
    keys = []
    for path in paths:
        match = compiled.search(path.name)
        if match is None or not match.group(1):
            raise DataError(
                f"{path.name} does not match --group-pattern '{pattern}'; change the pattern so that its first group "
                "captures the patient key of every file."
            )
        keys.append(pseudonym(match.group(1)))
    return GroupKeys(keys, f"file-name pattern '{pattern}'")


def dicom_keys(paths: list[Path]) -> GroupKeys:
    """Keys from each DICOM header: patient, else study, else series (pseudonymised as read)."""
    keys, counts = [], {}
    tags = [keyword for keyword, _ in DICOM_LEVELS]
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags, force=True)
        except Exception:  # an unreadable header is refused later, when the pixels are decoded
            ds = None
        key = level = None
        for keyword, name in DICOM_LEVELS:
            value = str(getattr(ds, keyword, "") or "").strip() if ds is not None else ""
            if value.upper() not in DUMMY_IDS:
                key, level = pseudonym(f"{name}|{value}"), name
                break
        keys.append(key)
        counts[level or "file"] = counts.get(level or "file", 0) + 1
    described = ", ".join(f"{name} {n}" for name, n in counts.items())
    return GroupKeys(keys, f"DICOM header (images keyed by {described})")


def csv_keys(values: list[str | None], column: str) -> GroupKeys:
    return GroupKeys([pseudonym(v) if v else None for v in values], f"CSV column '{column}'")


def holdout(labels: np.ndarray, fraction: float, seed: int, groups: GroupKeys | None) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted indices: about ``fraction`` of the images held out, stratified by class.

    With ``groups``, whole groups are held out (``StratifiedGroupKFold`` with ``round(1 / fraction)`` folds, or
    one per group when there are fewer; the first fold is the held-out part), so no group is in both parts.

    Raises:
        DataError: fewer than 3 groups.
    """
    if groups is None:
        keep, held = stratified_split(labels, (fraction,), seed)
        return keep, held
    codes = groups.codes()
    count = len(np.unique(codes))
    if count < 3:
        raise DataError(
            f"The dataset has only {count} patients or groups ({groups.source}); a split by patient needs at least "
            "3. Add images of more patients, or give the splits yourself (train/ and test/ folders)."
        )
    # Few patients (or few images of every class): a larger share is held out, never none.
    folds = min(max(2, round(1 / fraction)), count, max(2, int(np.bincount(labels).max())))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "the least populated class has fewer members than folds": reported as counts
        warnings.simplefilter("ignore", UserWarning)
        keep, held = next(splitter.split(np.zeros(len(labels)), labels, codes))
    return np.sort(keep), np.sort(held)
