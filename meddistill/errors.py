"""Errors a user can act on.

Every exception here carries one plain sentence that names the file (or the
setting) and says what to do. The CLI prints it and exits with status 2; the
dashboard shows it with ``st.error``. Anything else is a bug.
"""


class MedDistillError(Exception):
    """Base class: ``str(error)`` is a complete sentence for the user."""


class DataError(MedDistillError):
    """A dataset, archive, image or DICOM file that cannot be used as given."""


class WeightsError(MedDistillError):
    """A weights file that is missing, tampered, truncated or does not fit the model."""


class TrainingError(MedDistillError):
    """Training stopped for a reason the user can fix (NaN loss, out of memory, full disk)."""


class Cancelled(Exception):
    """Raised inside the engine when the user asked to stop; not an error."""
