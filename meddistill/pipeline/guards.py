"""Guard rails of every run, decided on validation data only: is the teacher better than the student trained from
scratch (else distillation cannot help), and which student is the run's headline (the one that is best on val, so a
distilled student worse than the baseline is never presented as the result)."""

from __future__ import annotations

from meddistill.store.report import TeacherCheck

# What would give a better teacher, said when it is not better than the scratch student.
SUGGESTION = (
    "start it from ImageNet weights (--pretrained), give it more time (--teacher-epochs, or a larger --budget), or "
    "import a stronger one (--teacher-weights)"
)


def _key(val: dict) -> tuple[float, float]:
    return float(val.get("val_auc", float("nan"))), float(val.get("val_acc", float("nan")))


def better_on_val(a: dict, b: dict) -> bool:
    """Whether ``a``'s val figures beat ``b``'s: higher val AUC, ties broken by val ACC."""
    return _key(a) > _key(b)


def teacher_check(
    teacher: dict, scratch: dict, trained_on: int = 0, limit: str | None = None, metric: str = "AUC"
) -> TeacherCheck | None:
    """Compare the teacher with the scratch student on val (AUC, ties: ACC); None without both figures.

    Args:
        teacher: The teacher's ``{"val_auc", "val_acc"}`` (best epoch, or its scores when used as is).
        scratch: The scratch student's best-epoch ``{"val_auc", "val_acc"}``.
        trained_on: Epochs the teacher trained on because it was not better (``meddistill.pipeline.train_on``).
        limit: What cut that round short or ruled it out (e.g. "10-minute budget"), if anything.
        metric: The val figure's name in the sentence (the task's: "macro AUC" for several findings per image).
    """
    if not teacher or not scratch:
        return None
    t, s = _key(teacher), _key(scratch)
    better = t > s
    digits = 3 if f"{t[0]:.3f}" != f"{s[0]:.3f}" else 4  # level at 3 decimals: show the 4th that decided it
    figures = f"val {metric} {t[0]:.{digits}f} against {s[0]:.{digits}f}"
    more = ""
    if trained_on:
        epochs = f"{trained_on} more epoch" + ("s" if trained_on != 1 else "")
        more = f" after training on for {epochs}" + (f" (as many as the {limit} left)" if limit else "")
    elif limit:
        more = f"; the {limit} left no time to train it on"
    if better:
        sentence = (
            f"The teacher is better than the student trained from scratch on validation data{more} ({figures}), so "
            "the distilled student has something to learn from it."
        )
    else:
        sentence = (
            f"The teacher is not better than the student trained from scratch on validation data ({figures}){more}, "
            f"so distillation cannot help with this teacher; {SUGGESTION}."
        )
    return TeacherCheck(
        teacher_val_auc=t[0], scratch_val_auc=s[0], better=better, sentence=sentence, trained_on_epochs=trained_on
    )


def distilled_from(source) -> str | None:
    """The sentence saying what the distilled student learned from, when it was more than the teacher."""
    members = getattr(source, "members", None)
    if not members:
        return None
    return (
        f"The distilled student learned from the teacher and the student trained from scratch together ({source.arch}, "
        "logits averaged)."
    )


def headline_student(val: dict[str, dict], metric: str = "AUC") -> tuple[str, str]:
    """The student the run presents as its result, and why: the distilled student unless the scratch student is
    better on val (AUC, ties: ACC). Returns (role, one sentence)."""
    kd, scratch = val.get("student_kd"), val.get("student_scratch")
    if not kd or not scratch:
        return "student_kd", "Headline: the distilled student."
    k, s = _key(kd), _key(scratch)
    if s > k:
        return "student_scratch", (
            f"Headline: the student trained from scratch, which is better on validation data than the distilled "
            f"student (val {metric} {s[0]:.3f} against {k[0]:.3f}); the distilled student is shown beside it."
        )
    return "student_kd", (
        f"Headline: the distilled student, at least as good on validation data as the one trained from scratch "
        f"(val {metric} {k[0]:.3f} against {s[0]:.3f})."
    )
