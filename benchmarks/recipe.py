"""Train one model under one recipe and print validation and test figures per epoch.

The tool behind "How the defaults were chosen" in docs/results.md: it trains
the teacher, or a student (scratch or distilled from saved teacher weights),
with the library's own ``fit`` and records, after every epoch, the validation
AUC / ACC that ``fit`` selects on and the test ACC / AUC of the same weights.
The test figures are for analysis only; nothing in the engine sees them.

Usage:
    python benchmarks/recipe.py --data FILE --seed 1 --role teacher --augment --ema 0.98 --save teacher.safetensors
    python benchmarks/recipe.py --data FILE --seed 1 --role kd --teacher-weights teacher.safetensors --ema 0.98

The last line is ``ratio=X``: the selected model's test ACC over the
MedMNIST v2 ResNet-18 (28) test ACC of the dataset (PneumoniaMNIST 0.854,
BreastMNIST 0.863).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import ROOT  # noqa: F401  (puts the repository on sys.path)

import meddistill.training.engine as engine
from meddistill.data import load_dataset
from meddistill.data.tensors import Batches
from meddistill.distillation import create_method
from meddistill.evaluation import classification_metrics
from meddistill.io.weights import load_weights, save_weights
from meddistill.pipeline.building import build
from meddistill.settings.config import RunConfig
from meddistill.training import FitSettings, class_weights_for
from meddistill.training.distributed import gather_predictions

REFERENCE_ACC = {"pneumoniamnist": 0.854, "breastmnist": 0.863}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--role", choices=["teacher", "scratch", "kd"], default="teacher")
    parser.add_argument("--teacher-weights", help="trained teacher (.safetensors) for --role kd")
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--ema", type=float, default=0.0, help="moving-average decay (0: off)")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--min-steps", type=int, default=150)
    parser.add_argument("--save", help="write the selected weights here")
    args = parser.parse_args()

    config = RunConfig.from_preset(
        "cpu",
        data=args.data,
        seed=args.seed,
        min_steps=args.min_steps,
        kd_alpha=args.alpha,
        kd_temperature=args.temperature,
    ).validate()
    dataset = load_dataset(args.data, seed=args.seed)
    size = config.resolved_image_size(dataset.image_size)
    batches = {s: Batches(dataset.splits[s], dataset.channels, size) for s in ("train", "val", "test")}
    test_labels = dataset.splits["test"].labels

    per_epoch = []
    validate = engine._validate

    def validate_and_test(model, val, device):
        loss, acc, auc = validate(model, val, device)
        test = classification_metrics(test_labels, gather_predictions(model, batches["test"], device))
        per_epoch.append((auc, acc, test["acc"], test["auc"]))
        return loss, acc, auc

    engine._validate = validate_and_test
    role = "teacher" if args.role == "teacher" else "student_kd"
    model = build(config, dataset, role)
    teacher = method = None
    if args.role == "kd":
        teacher = load_weights(build(config, dataset, "teacher"), args.teacher_weights).eval()
        method = create_method("kd", temperature=args.temperature, alpha=args.alpha)
    weights = class_weights_for(dataset.splits["train"].labels, dataset.num_classes)
    started = time.perf_counter()
    settings = FitSettings(
        epochs=config.epochs_for(role, len(dataset.splits["train"])),
        lr=config.lr,
        batch_size=config.batch_size,
        seed=args.seed,
        patience=config.patience,
        augment=args.augment,
        class_weights=weights,
        ema_decay=args.ema,
    )
    result = engine.fit(
        model, batches["train"], batches["val"], settings, role=args.role, teacher=teacher, method=method
    )
    test = classification_metrics(test_labels, gather_predictions(model, batches["test"], "cpu"))
    print("epoch  val AUC  val ACC  test ACC  test AUC")
    for epoch, (val_auc, val_acc, test_acc, test_auc) in enumerate(per_epoch, start=1):
        mark = "  <- selected" if epoch == result.best_epoch else ""
        print(f"{epoch:5d}  {val_auc:7.3f}  {val_acc:7.3f}  {test_acc:8.3f}  {test_auc:8.3f}{mark}")
    print(
        f"{args.role} seed {args.seed} augment={args.augment} ema={args.ema}: test ACC {test['acc']:.3f} AUC "
        f"{test['auc']:.3f} ({time.perf_counter() - started:.0f} s)"
    )
    if args.save:
        save_weights(model, args.save, metadata={"arch": model.arch, "role": role})
    stem = Path(args.data).stem.lower()
    print(f"ratio={test['acc'] / REFERENCE_ACC.get(stem, 1.0):.3f}")


if __name__ == "__main__":
    main()
