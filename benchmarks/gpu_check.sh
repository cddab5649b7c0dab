#!/usr/bin/env bash
# GPU check: train the default pair (resnet18 teacher, tiny_cnn student, Hinton KD) on PneumoniaMNIST
# upsampled to 224 px with the `thorough` preset (augmentation on) and short schedules, time it, and
# check the test metrics against the MedMNIST v2 ResNet-18 baseline (ACC 0.854, AUC 0.944).
#
# Usage (from the repository root, on a machine with a CUDA GPU):
#   bash benchmarks/gpu_check.sh
# Environment: TEACHER_EPOCHS (default 10), STUDENT_EPOCHS (default 20), MIN_ACC, MIN_AUC,
#   TIME_BUDGET_S (default 300: a warning, not a failure, when exceeded), PYTHON (default python).
# Exit status: 0 all thresholds met; 1 a threshold missed; 3 no GPU or no data (nothing was checked).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-10}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-20}
MIN_ACC=${MIN_ACC:-0.854}
MIN_AUC=${MIN_AUC:-0.944}
TIME_BUDGET_S=${TIME_BUDGET_S:-300}

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: torch sees no CUDA GPU here; run this on a machine with one." >&2
    exit 3
fi
DATA=$("$PYTHON" -c 'from meddistill.paths import shared_data; print(shared_data() / "medmnist" / "pneumoniamnist.npz")')
if [[ ! -f "$DATA" ]]; then
    echo "gpu_check: $DATA not found; set MEDDISTILL_DATA to the folder with medmnist/." >&2
    exit 3
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export MEDDISTILL_HOME="$WORK/home"
echo "# gpu_check $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
"$PYTHON" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU {torch.cuda.get_device_name(0)}")'
echo "data: $DATA; 224 px, preset thorough, teacher epochs $TEACHER_EPOCHS, student epochs $STUDENT_EPOCHS"

START=$(date +%s)
"$PYTHON" -m meddistill run --data "$DATA" --image-size 224 --preset thorough --device cuda \
    --teacher-epochs "$TEACHER_EPOCHS" --student-epochs "$STUDENT_EPOCHS" --out "$WORK/run"
ELAPSED=$(( $(date +%s) - START ))
echo "wall time: ${ELAPSED} s (budget ${TIME_BUDGET_S} s)"
if (( ELAPSED > TIME_BUDGET_S )); then
    echo "warning: over the time budget; lower TEACHER_EPOCHS / STUDENT_EPOCHS." >&2
fi

"$PYTHON" - "$WORK/run/report.json" "$MIN_ACC" "$MIN_AUC" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1]))
min_acc, min_auc = float(sys.argv[2]), float(sys.argv[3])
failed = []
print(f"{'model':<17}{'arch':<10}{'ACC':>7}{'AUC':>7}  check")
for role, model in report["models"].items():
    acc, auc = model["test"]["acc"], model["test"]["auc"]
    checked = role in ("teacher", "student_kd")
    ok = acc >= min_acc and auc >= min_auc
    if checked and not ok:
        failed.append(role)
    verdict = ("ok" if ok else "MISSED") if checked else "(not checked)"
    print(f"{role:<17}{model['arch']:<10}{acc:>7.3f}{auc:>7.3f}  {verdict}")
print(f"thresholds: ACC >= {min_acc}, AUC >= {min_auc}")
sys.exit(1 if failed else 0)
PY
