"""What does distillation cost over training the same student from scratch?

Student tiny_cnn, teacher resnet18 (random weights: speed does not depend on
them), PneumoniaMNIST train at 28 px, batch 128, 2 torch threads.

* meddistill without augmentation: ``fit`` with a teacher and method "kd"
  computes the teacher's logits once (cached) and then trains like scratch.
  Measured on the full train split as interleaved one-epoch ``fit`` calls
  (epoch time from ``fit``'s own history); the one-off caching time is
  ``teacher_logits`` (what ``fit`` runs first) with resnet18 on the same split.
* the plain loop: a hand-written KD loop that runs the teacher on every batch,
  against the same hand-written loop without the teacher.
* meddistill with augmentation: the teacher must see each augmented batch, so
  nothing can be cached; compared with scratch (augmented) plus one teacher
  forward pass over the same images.

The last two run the teacher on every batch (a minute or more per full epoch
on 2 cores), so they are measured on the first ``--subset`` train images; the
ratios do not depend on the number of images beyond the fixed validation cost.

Run: ``python benchmarks/kd_cost.py`` (about 4 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import copy
import time

import common
import torch

from meddistill.distillation import create_method
from meddistill.models import create_model
from meddistill.settings.config import PRESETS
from meddistill.training import FitSettings, fit, teacher_logits

BATCH, LR, WD = 128, 2e-3, 1e-4


def fit_epochs(student, train, val, epochs: int, teacher=None, augment: bool = False) -> tuple[list[float], float]:
    """Per-epoch seconds from ``fit``'s history, and the seconds spent before the first epoch."""
    method = create_method("kd", temperature=4.0, alpha=0.9) if teacher is not None else None
    start = time.perf_counter()
    result = fit(
        copy.deepcopy(student),
        train,
        val,
        FitSettings(epochs=epochs, lr=LR, weight_decay=WD, batch_size=BATCH, patience=epochs + 1, augment=augment),
        role="bench",
        teacher=teacher,
        method=method,
    )
    wall = time.perf_counter() - start
    cumulative = [h["seconds"] for h in result.history]
    return [b - a for a, b in zip([0.0] + cumulative, cumulative)], wall - result.seconds


def bf16_caching(teacher, train) -> tuple[float, float]:
    """What-if (not what meddistill does today): the caching pass under CPU bf16 autocast, channels-last.

    Returns:
        (seconds, largest |logit difference| from the fp32 logits).
    """
    fp32 = teacher_logits(teacher, common.subset_batches(train, 256), torch.device("cpu"))
    model = copy.deepcopy(teacher).to(memory_format=torch.channels_last).eval()

    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.cat(
                [
                    model(images.contiguous(memory_format=torch.channels_last)).float()
                    for images, _, _ in train.iterate(256)
                ]
            )

    run_first = common.subset_batches(train, 256)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        diff = float((model(run_first.images.contiguous(memory_format=torch.channels_last)).float() - fp32).abs().max())
    return common.seconds(run), diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=4, help="interleaved scratch/KD epoch pairs on the full train split"
    )
    parser.add_argument("--subset", type=int, default=768, help="train images for the teacher-every-batch comparisons")
    args = parser.parse_args()
    common.setup("kd_cost: distillation epoch vs scratch epoch (tiny_cnn <- resnet18, PneumoniaMNIST 28 px, batch 128)")
    _, batches = common.pneumonia(28)
    train, val = batches["train"], batches["val"]
    torch.manual_seed(0)
    student = create_model("tiny_cnn", 2, 1, 28)
    teacher = create_model("resnet18", 2, 1, 28).eval()
    small = common.subset_batches(train, args.subset)

    fit_epochs(student, common.subset_batches(train, 256), common.subset_batches(val, 64), 1)  # warm-up
    teacher_logits(teacher, common.subset_batches(train, 128), torch.device("cpu"))

    # Steady-state epochs: once cached, a KD epoch reads an (N, K) logits table whichever teacher filled it,
    # so the interleaved repeats cache a cheap stand-in teacher; resnet18's caching is timed once below.
    stand_in = create_model("tiny_cnn", 2, 1, 28).eval()
    scratch, kd, pairs = [], [], []
    for _ in range(args.repeats):
        scratch.append(fit_epochs(student, train, val, 1)[0][0])
        kd.append(fit_epochs(student, train, val, 1, stand_in)[0][0])
        pairs.append(kd[-1] / scratch[-1])
    cache_s = common.seconds(lambda: teacher_logits(teacher, train, torch.device("cpu")))  # exactly what fit runs first
    cache_bf16_s, bf16_diff = bf16_caching(teacher, train)
    scratch_s, kd_s = common.median(scratch), common.median(kd)
    epochs_preset = PRESETS["cpu"]["student_epochs"]
    steady = common.median(pairs)
    amortised = (epochs_preset * steady * scratch_s + cache_s) / (epochs_preset * scratch_s)

    images, labels = small.images, small.labels
    plain_scratch, plain_kd = [], []
    for _ in range(2):
        plain_scratch.append(common.plain_epoch(copy.deepcopy(student), images, labels))
        plain_kd.append(common.plain_epoch(copy.deepcopy(student), images, labels, teacher=teacher))
    aug_scratch = fit_epochs(student, small, val, 1, augment=True)[0][0]
    aug_kd = fit_epochs(student, small, val, 1, teacher, augment=True)[0][0]
    teacher_pass = common.seconds(lambda: teacher_logits(teacher, small, torch.device("cpu")))
    aug_scratch = (aug_scratch + fit_epochs(student, small, val, 1, augment=True)[0][0]) / 2

    full = len(train)
    print(
        f"full train split: {full} images; subset for the teacher-every-batch rows: {len(small)} images; val "
        f"{len(val)} images (validated every epoch by fit)"
    )
    print(
        f"one-off teacher logit caching (full train split): {cache_s:.1f} s = {cache_s / scratch_s:.1f} scratch epochs"
    )
    print(
        f"  what-if: the same pass under CPU bf16 autocast + channels-last (AMX): {cache_bf16_s:.1f} s, "
        f"max |logit diff| {bf16_diff:.3g}; amortised ratio would be "
        f"{(epochs_preset * steady * scratch_s + cache_bf16_s) / (epochs_preset * scratch_s):.2f}"
    )
    print()
    common.table(
        ["setting", "images", "scratch s/ep", "KD s/ep", "KD/scratch"],
        [
            ["meddistill, cached logits, steady state", full, scratch_s, kd_s, steady],
            [
                "meddistill, cached, 1st epoch incl. caching",
                full,
                scratch_s,
                kd_s + cache_s,
                (kd_s + cache_s) / scratch_s,
            ],
            [
                f"meddistill, cached, amortised over {epochs_preset} ep",
                full,
                scratch_s,
                kd_s + cache_s / epochs_preset,
                amortised,
            ],
            [
                "plain loop, teacher on every batch",
                len(small),
                common.median(plain_scratch),
                common.median(plain_kd),
                common.median(plain_kd) / common.median(plain_scratch),
            ],
            ["meddistill, augmentation (teacher every batch)", len(small), aug_scratch, aug_kd, aug_kd / aug_scratch],
        ],
        widths=[48, 7, 13, 10, 11],
    )
    reference = aug_scratch + teacher_pass
    print(
        f"with augmentation: scratch epoch {aug_scratch:.2f} s + one teacher forward pass {teacher_pass:.2f} s = "
        f"{reference:.2f} s; "
        f"meddistill's KD epoch {aug_kd:.2f} s = {aug_kd / reference:.2f}x that floor"
    )
    print(
        f"interleaved 1-epoch fit calls (s): scratch {', '.join(f'{s:.2f}' for s in scratch)}; KD "
        f"{', '.join(f'{s:.2f}' for s in kd)}"
    )
    print("steady-state KD/scratch = median of the per-pair ratios; s/ep columns are medians")
    target = steady
    print(
        "target: meddistill KD epoch / scratch epoch <= 1.15 without augmentation -> "
        f"{'met' if target <= 1.15 else 'MISSED'} ({target:.2f}; amortised over {epochs_preset} epochs incl. caching: "
        f"{amortised:.2f})"
    )
    common.ratio(target)


if __name__ == "__main__":
    main()
