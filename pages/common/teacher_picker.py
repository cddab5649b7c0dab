"""The Train page's teacher choice: train it here, start from ImageNet weights, upload a trained model, or reuse
another run's teacher. Returns the run settings it decides; the checks live in ``meddistill.services.teachers``."""

from __future__ import annotations

from meddistill.data.options import DataOptions
from meddistill.services.teachers import (
    UPLOAD_TYPES,
    describe_model,
    model_choices,
    reusable_teachers,
    store_teacher_upload,
    teacher_choices,
)
from meddistill.settings.sources import PRETRAINED_DEFAULTS
from meddistill.views.dashboard import dataset_shape


def model_box(
    column, label: str, default: str, key: str, data: tuple[str, DataOptions], cap: int, role: str = "teacher"
) -> str:
    """A searchable model picker (MedDistill's models for ``role`` first, then timm's zoo) with the picked model's
    parameters and FLOPs at the size it will train at (the dataset's, capped by the preset)."""
    shape = dataset_shape(*data)
    options = model_choices(role, shape.spatial_dims)
    name = column.selectbox(label, options, index=options.index(default), key=key, help="Type to search timm's zoo.")
    _, channels, native, classes, _ = shape
    column.caption(describe_model(name, channels, min(native, cap), classes))
    return name


def teacher_picker(column, source: str, options: DataOptions, preset: dict) -> dict:
    """The teacher widgets in ``column`` for dataset ``source`` read with ``options``; returns the RunConfig fields
    they set (teacher, teacher_weights, pretrained, ...)."""
    data = (source, options)
    choices = teacher_choices()
    choice = choices[column.radio("Teacher", list(choices), key="teacher_source")]
    cap = preset["max_image_size"]
    if choice == "pretrained":
        teacher = model_box(column, "Architecture (timm)", PRETRAINED_DEFAULTS["teacher"], "t_pre", data, cap)
        both = column.checkbox("Start the student from ImageNet weights too", key="pretrained_both")
        column.caption("Downloaded once into the usual cache; offline, give the weights file on the command line.")
        return {"teacher": teacher, "pretrained": "both" if both else "teacher"}
    if choice == "weights":
        upload = column.file_uploader(
            "Trained teacher (.safetensors, .pt/.pth state dict, TorchScript .pt, or .onnx)", type=list(UPLOAD_TYPES)
        )
        teacher = model_box(column, "Its architecture (not for ONNX/TorchScript)", preset["teacher"], "t_up", data, cap)
        order = column.text_input("Its class order, comma-separated (blank: the dataset's order)", key="t_classes")
        if upload is None:
            column.info("Upload the teacher file; it is checked against the dataset before the run is queued.")
            return {"teacher": teacher}
        path = store_teacher_upload(upload.getvalue(), upload.name)
        classes = [c.strip() for c in order.split(",") if c.strip()] or None
        return {"teacher": teacher, "teacher_weights": str(path), "teacher_classes": classes}
    if choice == "reused":
        runs = reusable_teachers(source)
        if not runs:
            column.info("No finished run on this dataset yet: train one first, then reuse its teacher here.")
            return {"teacher": preset["teacher"]}
        label = column.selectbox("Run whose teacher to reuse", list(runs), key="t_reuse")
        arch, path, size, run = runs[label]
        column.caption(
            f"Not trained again; its logits on the training images are reused when they match. It was trained at "
            f"{size} px, so this run trains at {size} px too (the image size setting is not used)."
        )
        return {"teacher": arch, "teacher_weights": path, "teacher_from": run, "image_size": size}
    teacher = model_box(column, "Architecture", preset["teacher"], "t_here", data, cap)
    return {"teacher": teacher}
