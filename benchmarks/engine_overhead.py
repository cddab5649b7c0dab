"""How much does meddistill's training engine cost over a minimal hand-written PyTorch loop?

Same model, same initial weights, same tensors (PneumoniaMNIST at 28 px,
already in memory), same batch size (128), same AdamW. ``fit`` is timed as a
whole one-epoch call (setup, training, its per-epoch validation pass and the
best-weights copy); the hand loop trains only. Both are warmed up first, the
repeats are interleaved (fit, loop, fit, loop, ...) and medians are reported.

* tiny_cnn: the full train split (4708 images), ``fit`` validating on the
  full val split (524) -- what a user gets -- and on 16 val images (the loop
  machinery alone).
* resnet18: briefly, on the first ``--resnet-images`` train images and 32 val images.

Run: ``python benchmarks/engine_overhead.py`` (about 3 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import copy
import time

import common

from meddistill.models import create_model
from meddistill.training import FitSettings, fit

BATCH, LR, WD = 128, 2e-3, 1e-4


def fit_seconds(model, train, val) -> float:
    """Wall time of one whole ``fit`` call of one epoch."""
    start = time.perf_counter()
    fit(
        copy.deepcopy(model),
        train,
        val,
        FitSettings(epochs=1, lr=LR, weight_decay=WD, batch_size=BATCH, patience=2),
        role="bench",
    )
    return time.perf_counter() - start


def compare(name: str, model, train, val, repeats: int) -> dict:
    """Interleaved repeats of fit vs the hand loop; medians of images/s and of the per-pair ratios."""
    fit_seconds(model, common.subset_batches(train, 256), common.subset_batches(val, 16))  # warm-up
    common.plain_epoch(copy.deepcopy(model), train.images[:256], train.labels[:256], BATCH, LR, WD)
    fits, loops = [], []
    for _ in range(repeats):
        fits.append(fit_seconds(model, train, val))
        loops.append(common.plain_epoch(copy.deepcopy(model), train.images, train.labels, BATCH, LR, WD))
    n = len(train)
    return {
        "name": name,
        "images": n,
        "val": len(val),
        "fit": n / common.median(fits),
        "loop": n / common.median(loops),
        "ratio": common.median(loop / fit for fit, loop in zip(fits, loops)),
        "samples": (fits, loops),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved pairs for tiny_cnn")
    parser.add_argument("--resnet-images", type=int, default=384, help="train images for the resnet18 rows")
    parser.add_argument("--resnet-repeats", type=int, default=3)
    args = parser.parse_args()
    common.setup("engine_overhead: meddistill fit vs a minimal PyTorch loop (PneumoniaMNIST 28 px, batch 128, AdamW)")
    _, batches = common.pneumonia(28)
    train, val = batches["train"], batches["val"]

    rows = []
    tiny = create_model("tiny_cnn", 2, 1, 28)
    rows.append(compare("tiny_cnn, fit validates on full val", tiny, train, val, args.repeats))
    rows.append(
        compare("tiny_cnn, fit validates on 16 images", tiny, train, common.subset_batches(val, 16), args.repeats)
    )
    resnet = create_model("resnet18", 2, 1, 28)
    rows.append(
        compare(
            "resnet18, fit validates on 32 images",
            resnet,
            common.subset_batches(train, args.resnet_images),
            common.subset_batches(val, 32),
            args.resnet_repeats,
        )
    )

    common.table(
        ["model / setting", "train imgs", "val imgs", "fit img/s", "loop img/s", "fit/loop"],
        [[r["name"], r["images"], r["val"], r["fit"], r["loop"], r["ratio"]] for r in rows],
        widths=[38, 10, 8, 10, 11, 9],
    )
    for r in rows:
        fits, loops = r["samples"]
        print(
            f"{r['name']}: fit s {', '.join(f'{s:.2f}' for s in fits)}; loop s {', '.join(f'{s:.2f}' for s in loops)}"
        )
    print(
        "fit/loop = median over interleaved pairs of (loop seconds / fit seconds), i.e. fit's throughput relative to "
        "the loop"
    )
    headline = rows[0]["ratio"]
    print(
        "target: fit throughput / hand loop >= 0.95 (tiny_cnn, full validation) -> "
        f"{'met' if headline >= 0.95 else 'MISSED'} ({headline:.2f}); "
        f"without the validation pass {rows[1]['ratio']:.2f}; resnet18 {rows[2]['ratio']:.2f}"
    )
    common.ratio(headline)


if __name__ == "__main__":
    main()
