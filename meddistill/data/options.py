"""How a dataset is read: the labels-CSV columns, the patient key and what to do with duplicates.

One ``DataOptions`` travels from the CLI flags, the Data page or a run's ``config.json`` to ``load_dataset``, so
the same source always gives the same splits.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields

from meddistill.data.multilabel import UNCERTAIN_POLICIES
from meddistill.errors import DataError


@dataclass(frozen=True)
class DataOptions:
    """Options for reading a dataset; ``None`` everywhere means "recognise it".

    Attributes:
        file_column: Labels-CSV column with the file paths (guessed from common names when ``None``).
        label_column: Labels-CSV column with the class labels (guessed when ``None``).
        split_column: Labels-CSV column with train/val/test (guessed: ``split``, ``subset``, ``set``).
        group_column: Labels-CSV column with the patient or study id that keeps one patient in one split.
        group_pattern: Regular expression over file names whose first group is the patient key
            (e.g. ``^(person\\d+|(?:NORMAL2-)?IM-\\d+)``).
        drop_duplicates: Remove val and test images that duplicate (exactly or nearly) a training image,
            and test images that duplicate a val image.
        multi_label: True reads a label column's joined values as several findings per image, False keeps each
            value as one class, None recognises it (``meddistill.data.multilabel``).
        uncertain: How a one-column-per-finding file's -1 ("uncertain") is read: ``ignore`` (left out of the loss
            and the metrics), ``positive`` or ``negative``.
        subgroup_columns: Labels-CSV columns (sex, age, view position, site) kept per image for the per-group
            test figures (``MedDataset.attributes``).
    """

    file_column: str | None = None
    label_column: str | None = None
    split_column: str | None = None
    group_column: str | None = None
    group_pattern: str | None = None
    drop_duplicates: bool = False
    multi_label: bool | None = None
    uncertain: str = "ignore"
    subgroup_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "subgroup_columns", tuple(self.subgroup_columns or ()))
        if self.uncertain not in UNCERTAIN_POLICIES:
            raise DataError(
                f"--uncertain {self.uncertain} is not a policy; choose one of: {', '.join(UNCERTAIN_POLICIES)}."
            )
        if self.group_pattern:
            try:
                compiled = re.compile(self.group_pattern)
            except re.error as error:
                raise DataError(
                    f"--group-pattern '{self.group_pattern}' is not a valid regular expression ({error}); fix it."
                ) from None
            if compiled.groups < 1:
                raise DataError(
                    f"--group-pattern '{self.group_pattern}' has no group; put the patient key in parentheses, "
                    "e.g. ^(person\\d+)."
                )

    @property
    def csv_columns_given(self) -> bool:
        """True when the user named any labels-CSV column."""
        return any((self.file_column, self.label_column, self.split_column, self.group_column))

    def given(self) -> dict:
        """The options that differ from the defaults (what a summary records)."""
        defaults = {f.name: f.default for f in fields(self)}
        return {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in asdict(self).items()
            if v != defaults[k] and v is not None
        }

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
