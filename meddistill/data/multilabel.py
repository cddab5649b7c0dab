"""Several findings per image: how labels say so, read into an (N, K) matrix, never guessed.

A dataset is multi-label when its labels say so (``recognise_findings``), by one of three rules, and its summary
names the rule:

* ``separator``: a label column whose values are findings joined by ``|``, ``;`` or ``,`` (NIH ChestX-ray14's
  ``Finding Labels``), with ``No Finding``, ``Normal`` or an empty cell meaning every finding absent;
* ``finding columns``: one column per finding with CheXpert's encoding (1 positive, 0 negative, blank not mentioned and
  read as negative, -1 uncertain, read by ``--uncertain``: ``ignore`` (default: left out of the loss and the
  metrics), ``positive`` or ``negative``);
* ``npz``: a MedMNIST-style ``.npz`` whose labels are N x K zeros and ones (``meddistill.data.npz``).

The matrix is float32 with 1 (present), 0 (absent) and NaN (uncertain, ignored). Splits made for such data keep
every patient in one split and stratify the findings across splits (``holdout_findings``: the
``iterative-stratification`` package's multi-label splitter over patients).
"""

from __future__ import annotations

import numpy as np

from meddistill.errors import DataError

SEPARATORS = ("|", ";", ",")
NO_FINDING = ("no finding", "no findings", "normal", "none", "")
UNCERTAIN_POLICIES = ("ignore", "positive", "negative")
POSITIVE, NEGATIVE, UNCERTAIN, BLANK = ("1", "1.0"), ("0", "0.0"), ("-1", "-1.0"), ("",)
# Columns of a per-finding labels file that are never findings (CheXpert's metadata), compared case-insensitively.
NOT_FINDINGS = ("sex", "age", "frontal/lateral", "ap/pa", "view", "follow-up #", "view position")


def _no_finding(value: str) -> bool:
    return value.strip().lower() in NO_FINDING


def separator_of(values: list[str], csv_name: str, column: str, multi_label: bool | None) -> str | None:
    """The separator that joins findings in ``values``, or None for one class per image.

    ``multi_label`` is the user's choice (``--multi-label`` True, ``--single-label`` False, None: recognise it).
    Recognised when exactly one separator occurs and some part of a joined value is also a whole value or a part of
    another combination (``Atelectasis`` and ``Atelectasis|Effusion``); otherwise the choice is the user's.

    Raises:
        DataError: two separators occur, or joined values whose parts never occur on their own (without a choice).
    """
    if multi_label is False:
        return None
    used = [sep for sep in SEPARATORS if any(sep in v for v in values)]
    if not used:
        if multi_label:
            raise DataError(
                f"{csv_name}'s column '{column}' has no value with several findings joined by |, ; or ,; remove "
                "--multi-label, or give the column that lists the findings."
            )
        return None
    if len(used) > 1:
        joined = [next(v for v in values if sep in v) for sep in used]
        raise DataError(
            f"{csv_name}'s column '{column}' joins values with both '{used[0]}' ('{joined[0]}') and '{used[1]}' "
            f"('{joined[1]}'); use one separator between findings, or give --single-label to keep each value as one "
            "class."
        )
    sep = used[0]
    if multi_label:
        return sep
    whole = {v.strip() for v in values if sep not in v}
    combos = {frozenset(p.strip() for p in v.split(sep)) for v in values if sep in v}
    parts = [p for combo in combos for p in combo]
    if any(p in whole for p in parts) or len(parts) > len(set(parts)):
        return sep
    example = next(v for v in values if sep in v)
    raise DataError(
        f"{csv_name}'s column '{column}' has values joined by '{sep}' (such as '{example}') whose parts never occur "
        "on their own; give --multi-label to read them as several findings per image, or --single-label to keep "
        "each value as one class."
    )


def findings_from_joined(values: list[str], sep: str, csv_name: str) -> tuple[list[str], np.ndarray]:
    """(finding names, (N, K) float32 0/1 matrix) from values joined by ``sep``; "No Finding" is all absent.

    Raises:
        DataError: a value names "No Finding" together with a finding, or fewer than 2 findings occur.
    """
    rows = []
    for value in values:
        parts = [p.strip() for p in value.split(sep) if p.strip()] if not _no_finding(value) else []
        if any(_no_finding(p) for p in parts):
            raise DataError(
                f"{csv_name} labels an image '{value}': 'no finding' together with a finding; correct that row."
            )
        rows.append(parts)
    names = sorted({p for parts in rows for p in parts})
    if len(names) < 2:
        raise DataError(f"{csv_name} names {len(names)} finding(s); a multi-label task needs at least two.")
    column = {name: k for k, name in enumerate(names)}
    matrix = np.zeros((len(values), len(names)), dtype=np.float32)
    for i, parts in enumerate(rows):
        matrix[i, [column[p] for p in parts]] = 1.0
    return names, matrix


def finding_columns(header: list[str], rows: list[dict[str, str]], used: set[str]) -> list[str]:
    """The columns of a CheXpert-style file that hold one finding each: every value 1, 0, -1 or blank, at least one 1,
    and not a column already in use (file, split, patient) or a known metadata column."""
    found = []
    allowed = set(POSITIVE + NEGATIVE + UNCERTAIN + BLANK)
    for name in header:
        if name in used or name.strip().lower() in NOT_FINDINGS:
            continue
        values = [row.get(name, "") for row in rows]
        if values and all(v in allowed for v in values) and any(v in POSITIVE for v in values):
            found.append(name)
    return found


def findings_from_columns(
    rows: list[dict[str, str]], names: list[str], policy: str
) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """((N, K) float32 matrix, counts per finding of positive / negative / blank / uncertain) under ``policy``.

    Blank ("not mentioned") is read as absent; -1 ("uncertain") as NaN (``ignore``), 1 (``positive``) or 0
    (``negative``).
    """
    if policy not in UNCERTAIN_POLICIES:
        raise DataError(f"--uncertain {policy} is not a policy; choose one of: {', '.join(UNCERTAIN_POLICIES)}.")
    uncertain = {"ignore": np.nan, "positive": 1.0, "negative": 0.0}[policy]
    matrix = np.zeros((len(rows), len(names)), dtype=np.float32)
    counts = {}
    for k, name in enumerate(names):
        values = [row.get(name, "") for row in rows]
        matrix[:, k] = [1.0 if v in POSITIVE else uncertain if v in UNCERTAIN else 0.0 for v in values]
        counts[name] = {
            "positive": sum(v in POSITIVE for v in values),
            "negative": sum(v in NEGATIVE for v in values),
            "blank (read as negative)": sum(v in BLANK for v in values),
            f"uncertain (read as {policy})": sum(v in UNCERTAIN for v in values),
        }
    return matrix, counts


def holdout_findings(
    matrix: np.ndarray, fraction: float, seed: int, codes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held-out) sorted image indices, about ``fraction`` held out, findings stratified across the two.

    With patient ``codes`` (N,), whole patients are held out: each patient's labels are the findings any of their
    images has, and the patients are split by ``MultilabelStratifiedShuffleSplit`` (iterative stratification), so
    rare findings reach both parts.

    Raises:
        DataError: fewer than 3 patients.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    present = np.nan_to_num(matrix, nan=0.0) > 0
    codes = np.arange(len(matrix)) if codes is None else codes
    patients, inverse = np.unique(codes, return_inverse=True)
    if len(patients) < 3:
        raise DataError(
            f"The dataset has only {len(patients)} patients; a split by patient needs at least 3. Add images of more "
            "patients, or give the splits yourself."
        )
    per_patient = np.zeros((len(patients), matrix.shape[1]), dtype=np.int64)
    np.logical_or.at(per_patient, inverse, present)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, held_patients = next(splitter.split(np.zeros(len(patients)), per_patient))
    held = np.isin(inverse, held_patients)
    return np.flatnonzero(~held), np.flatnonzero(held)


def require_in_train(names: list[str], train: np.ndarray, source: str) -> None:
    """Refuse findings that no training image has: a model cannot learn them.

    Raises:
        DataError: naming the findings and the two ways out.
    """
    missing = [n for k, n in enumerate(names) if not np.nansum(train[:, k]) > 0]
    if missing:
        raise DataError(
            f"{source}: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no positive image in the "
            "training split, so no model can learn it; add training images with it, or remove it from the labels."
        )


def absent_findings(names: list[str], matrices: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Per split, the findings with no positive image there (what the summary warns about)."""
    return {
        split: [n for k, n in enumerate(names) if not np.nansum(m[:, k]) > 0] for split, m in matrices.items() if len(m)
    }


# Official split lists beside a labels CSV (ChestX-ray14 ships train_val_list.txt and test_list.txt): one file name
# per line. Images in none of them are left out and listed as ignored.
SPLIT_LISTS = {"train_val_list.txt": "train", "train_list.txt": "train", "val_list.txt": "val", "test_list.txt": "test"}


def split_lists(folder) -> dict | None:
    """``{"splits": {file name: split}, "files": "a.txt, b.txt", "unlisted": reason}`` from the split lists in
    ``folder``, or None when it has none (or only one: a train list alone splits nothing)."""
    from pathlib import Path

    found = {name: split for name, split in SPLIT_LISTS.items() if (Path(folder) / name).is_file()}
    if len(found) < 2 and "test_list.txt" not in found:
        return None
    splits: dict[str, str] = {}
    for name, split in found.items():
        for line in (Path(folder) / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                splits[Path(line.strip()).name] = split
    files = ", ".join(found)
    return {"splits": splits, "files": files, "unlisted": f"in none of the split lists ({files})"}
