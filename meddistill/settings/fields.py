"""Every setting of a run, one ``declare`` line each (``meddistill.settings.declarations``): ``RunConfig``'s fields,
``meddistill run``'s options and the Train page's fields are made from these lines, in this order. Adding a setting is
one line here plus the code that uses it."""

from __future__ import annotations

from meddistill.distillation.base import available_methods
from meddistill.distillation.ensemble import DISTIL_FROM, TEACHER
from meddistill.settings.declarations import comma_list, declare
from meddistill.settings.sources import PRETRAINED_CHOICES, PRETRAINED_DEFAULTS
from meddistill.tracking import available_trackers

declare("data", "", "dataset source: .npz, folder, .zip or MedMNIST name", cli=False)
declare("file_column", None, "labels-CSV column with the image files", kind=str, optional=True, cli=False)
declare("label_column", None, "labels-CSV column with the classes", kind=str, optional=True, cli=False)
declare("split_column", None, "labels-CSV column with train/val/test", kind=str, optional=True, cli=False)
declare("group_column", None, "labels-CSV column with the patient id", kind=str, optional=True, cli=False)
declare(
    "group_pattern", None, "regular expression whose first group is the patient key", kind=str, optional=True, cli=False
)
declare("drop_duplicates", False, "drop val and test images that copy a training image", cli=False)
declare(
    "multi_label",
    None,
    "read joined label values as several findings per image (True), as one class each (False), or recognise it",
    kind=bool,
    optional=True,
    cli=False,
)
declare(
    "subgroup_columns",
    [],
    "labels-CSV columns (sex, age, view position, site) whose values give per-group test figures",
    kind=list,
    cli=False,
)
declare("uncertain", "ignore", "how a per-finding column's -1 is read: ignore, positive, negative", cli=False)
declare("teacher", "resnet18", "teacher architecture: one of MedDistill's models or any timm name (timm/NAME)")
declare("student", "tiny_cnn", "student architecture, likewise")
declare("method", "kd", f"distillation method: {', '.join(available_methods())}, or auto (chosen on val)")
declare(
    "distil_from",
    TEACHER,
    "what the distilled student learns from: the teacher, the teacher and the scratch student with their logits "
    "averaged (ensemble; logit methods only), or auto: the ensemble when the teacher is not better than the scratch "
    "student on val",
    choices=DISTIL_FROM,
    page="distillation",
    label="Learn from",
)
declare(
    "kd_temperature",
    4.0,
    "softmax temperature T of Hinton KD",
    minimum=1.0,
    maximum=10.0,
    step=0.5,
    widget="slider",
    page="distillation",
    label="Temperature T",
)
declare(
    "kd_alpha",
    0.5,
    "weight of the teacher term; 1 - alpha goes to the labels",
    minimum=0.0,
    maximum=1.0,
    step=0.05,
    widget="slider",
    page="distillation",
    label="alpha (weight of the teacher)",
)
declare("kd_beta", 8.0, "DKD: weight of the non-target-class term (default 8)")
declare("feature_weight", 100.0, "weight of the feature term for attention / fitnet", cli=False)
declare("preset", "cpu", "name in PRESETS that filled the fields below", cli=False)
declare(
    "teacher_epochs",
    5,
    "epochs for the teacher (0: a teacher file used as is)",
    minimum=0,
    maximum=500,
    page="schedule",
    label="Teacher epochs",
)
declare(
    "student_epochs",
    30,
    "epochs for each student (scratch and distilled)",
    minimum=1,
    maximum=500,
    page="schedule",
    label="Student epochs",
)
declare("min_steps", 75, "raise the preset's default epochs to reach this many steps per model", minimum=0)
declare(
    "teacher_min_steps",
    None,
    "the teacher's own minimum of optimisation steps (default: --min-steps)",
    kind=int,
    optional=True,
    minimum=0,
)
declare(
    "teacher_train_on",
    False,
    "when the teacher is not better than the scratch student on val, train it on for as many epochs again at half "
    "the learning rate, within the budget (default: on in cpu and thorough)",
    page="schedule",
    label="Train the teacher on if it is not better than the scratch student",
)
declare(
    "budget",
    None,
    "minutes for the whole run (0.85 of them for training): the plan gives the teacher what the students leave "
    "(unless you give --teacher-epochs); a preset's budget bounds only the teacher's second round",
    kind=float,
    optional=True,
    minimum=0.5,
    page="schedule",
    label="Time budget (minutes)",
    none_label="no budget",
)
declare(
    "target_sensitivity",
    None,
    "choose each model's operating threshold on val to reach this sensitivity (default: maximal Youden's J)",
    kind=float,
    optional=True,
    minimum=0.5,
    maximum=0.999,
    page="advanced",
    label="Target sensitivity (operating point)",
    none_label="Youden's J",
    step=0.01,
)
declare(
    "target_specificity",
    None,
    "choose the operating threshold on val to reach this specificity instead",
    kind=float,
    optional=True,
    minimum=0.5,
    maximum=0.999,
    step=0.01,
)
declare(
    "positive_class",
    None,
    "two classes: the class called positive at the operating point (default: the one not named normal, benign, "
    "negative or healthy, else the second)",
    kind=str,
    optional=True,
)
declare(
    "log_to",
    [],
    'also log the run to this tracker: tensorboard or mlflow (repeat for both; pip install -e ".[tracking]")',
    kind=list,
    parse=str,
    cli_extra={"action": "append", "choices": available_trackers(), "metavar": "TRACKER"},
)
declare(
    "tracking_uri",
    None,
    "where the tracker writes: an MLflow tracking URI (default: a file store at MEDDISTILL_HOME/mlruns) or a "
    "TensorBoard log folder (default: the run folder's tensorboard/)",
    kind=str,
    optional=True,
)
declare("ema_decay", 0.0, "> 0: validate and keep a moving average of the weights", cli=False)
declare(
    "lr", 2e-3, "AdamW learning rate (cosine schedule)", minimum=1e-5, maximum=1.0, page="input", label="Learning rate"
)
declare("weight_decay", 1e-4, "AdamW weight decay", cli=False)
declare(
    "batch_size",
    128,
    "images per optimisation step",
    minimum=1,
    page="input",
    label="Batch size",
    widget="select",
    options=(16, 32, 64, 128, 256),
)
declare(
    "image_size",
    None,
    "train at this side in pixels (default: native, capped by the preset)",
    kind=int,
    optional=True,
    page="input",
    label="Image size (px)",
    widget="select",
    options=(None, 28, 32, 64, 128, 224),
    none_label="native",
)
declare("max_image_size", 64, "cap on the native size when image_size is not given", cli=False)
declare(
    "augment",
    False,
    "augment the teacher's training images (default: on in cpu and thorough)",
    page="input",
    label="Augment the teacher",
)
declare(
    "augment_students",
    False,
    "augment the students' training images too (thorough only)",
    page="input",
    label="Augment the students",
)
declare(
    "class_weighted",
    False,
    "weight cross-entropy by inverse class frequency",
    page="input",
    label="Class-weighted loss",
)
declare("patience", 8, "stop a model after this many epochs without val improvement", minimum=1)
declare(
    "min_delta",
    0.0,
    "the least rise of the val score (AUC) that counts as an improvement for early stopping (cpu, thorough: 0.001)",
    minimum=0.0,
    maximum=0.1,
)
declare(
    "seed", 0, "seed for splits, initialisation and batch order", minimum=0, maximum=10_000, page="input", label="Seed"
)
declare("device", "auto", "where to train", choices=("auto", "cpu", "cuda"))
declare("num_workers", 0, "data-loader worker processes for folder sources", cli=False)
declare(
    "teacher_weights",
    None,
    "a teacher trained elsewhere: .safetensors or a PyTorch state dict (.pt/.pth; never "
    "unpickled) for --teacher ARCH, a TorchScript file or an ONNX model; with --teacher-epochs 0 it is used as is. "
    "With --pretrained: the ImageNet weights file to start from instead of the cache or a download",
    kind=str,
    optional=True,
)
declare(
    "teacher_classes",
    None,
    "an imported teacher's class names in the order of its outputs, comma-separated "
    "(default: the dataset's order, as check-data prints it)",
    kind=list,
    optional=True,
    parse=comma_list,
)
declare(
    "teacher_from",
    None,
    "the run whose trained teacher this run reuses as is (--teacher-from RUN)",
    kind=str,
    optional=True,
    cli=False,
)
declare(
    "pretrained",
    "none",
    "start the teacher (the default when given alone), the student or both from timm's "
    f"ImageNet weights; without --teacher it is {PRETRAINED_DEFAULTS['teacher']}, without --student "
    f"{PRETRAINED_DEFAULTS['student']}",
    choices=PRETRAINED_CHOICES,
    cli_extra={"nargs": "?", "const": "teacher"},
)
declare(
    "student_weights", None, "with --pretrained student/both: the ImageNet weights file to use", kind=str, optional=True
)
declare("latency_runs", 200, "batch-1 timings whose median is reported", cli=False)
declare("world_size", 1, "processes that trained the run (torchrun)", cli=False)
declare(
    "checkpoint_seconds",
    30.0,
    "save the training state after the first epoch, then at most this often (default 30; 0: every epoch)",
    minimum=0.0,
)
declare("channels_last", True, "train in the NHWC memory format (default: on; faster convolutions)")
declare("threads", 0, "CPU threads for torch (default: one per available core)", minimum=0)
declare("given", [], "settings the user gave explicitly: presets never adapt these", kind=list, cli=False)
declare("extra", {}, "free-form notes kept with the run", kind=dict, cli=False)
