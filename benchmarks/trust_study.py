"""Does val-fitted calibration hold on test, and does a threshold chosen on val for a target sensitivity reach it?

For every finished run folder under ``--runs`` (the suite's logs, e.g. /work/studies/study5/default): the trust
section is written from the weights when the run predates it (``meddistill trust RUN --refresh``), then chosen again
for a target sensitivity on val (``--target``, default 0.95). One row per run and model: the val-fitted temperature,
test ECE raw and calibrated, Brier raw and calibrated, and at the operating point the val sensitivity, the test
sensitivity with its 95 % bootstrap interval and whether the target lies at or below the interval's upper end.

    python benchmarks/trust_study.py --runs /work/studies/study5/default --out docs/trust_study.md

Nothing is tuned here: temperature scaling and the threshold rules have no free setting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.evaluation.trust import TrustSettings  # noqa: E402
from meddistill.pipeline.trust import reassess, refresh  # noqa: E402
from meddistill.store.layout import LABELS, RunFolder  # noqa: E402


def study(run: Path, target: float) -> list[dict]:
    folder = RunFolder(run)
    report = folder.report()
    if report.trust is None:
        refresh(folder)
    trust = reassess(folder, TrustSettings("sensitivity", target))
    rows = []
    for role, m in trust.models.items():
        point = m.operating[0] if len(m.operating) == 1 else None  # two classes: the positive one
        kept = m.kept if m.kept is not None else [True] * len(m.temperature)
        shown = ", ".join(f"{t:.2f}" if k else "1 (raw kept)" for t, k in zip(m.temperature, kept))
        row = {
            "run": run.name,
            "model": LABELS[role],
            "T": shown if len(kept) < 4 else f"{sum(kept)} of {len(kept)} applied",
            "ECE raw": m.ece_raw,
            "ECE cal": m.ece,
            "lower": "lower" if m.ece < m.ece_raw - 1e-6 else ("higher" if m.ece > m.ece_raw + 1e-6 else "same"),
            "Brier raw": m.brier_raw,
            "Brier cal": m.brier,
        }
        if point is not None:
            t = point.test
            row.update(
                positive=point.name,
                val_sens=point.val["sensitivity"],
                test_sens=t["sensitivity"],
                ci=t["sensitivity_ci"],
                reached=t["sensitivity_ci"][1] >= target,
            )
        else:  # several classes: the per-class points, summarised
            reached = [p.test["sensitivity_ci"][1] >= target for p in m.operating]
            row.update(positive=f"{len(m.operating)} classes one-vs-rest", reached=f"{sum(reached)}/{len(reached)}")
        rows.append(row)
    return rows


def markdown(rows: list[dict], target: float) -> str:
    head = "| run | model | T | test ECE raw → cal | Brier raw → cal | positive | val sens | test sens (95% CI) "
    head += "| reached |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        sens = f"{r['test_sens']:.3f} ({r['ci'][0]:.3f}–{r['ci'][1]:.3f})" if "test_sens" in r else "–"
        val = f"{r['val_sens']:.3f}" if "val_sens" in r else "–"
        lines.append(
            f"| {r['run']} | {r['model']} | {r['T']} | {r['ECE raw']:.3f} → {r['ECE cal']:.3f} "
            f"({r['lower']}) | {r['Brier raw']:.3f} → {r['Brier cal']:.3f} | "
            f"{r['positive']} | {val} | {sens} | {r['reached']} |"
        )
    kd = [r for r in rows if r["model"] == LABELS["student_kd"]]
    counts = {k: sum(r["lower"] == k for r in kd) for k in ("lower", "same", "higher")}
    lines += [
        "",
        f"Distilled student: the test ECE is lower on {counts['lower']} of {len(kd)} runs, the same (no temperature "
        f"kept) on {counts['same']}, higher on {counts['higher']}; the threshold chosen "
        f"for sensitivity {target:g} on val reached it on test (target at or below the interval's upper end) on "
        f"{sum(r['reached'] is True for r in kd)} of {sum('test_sens' in r for r in kd)} two-class runs.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder of finished run folders")
    parser.add_argument("--target", type=float, default=0.95, help="target sensitivity on val (default 0.95)")
    parser.add_argument("--out", help="write the markdown table here too")
    parser.add_argument("--only", nargs="*", help="run folder names to include (default: every finished run)")
    args = parser.parse_args()
    runs = sorted(p for p in Path(args.runs).iterdir() if (p / "report.json").is_file())
    runs = [p for p in runs if not args.only or p.name in args.only]
    rows = []
    for run in runs:
        print(f"{run.name} ...", flush=True)
        rows += study(run, args.target)
    text = f"CPU: {describe_cpu()}\n\n" + markdown(rows, args.target)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
