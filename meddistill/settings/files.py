"""Settings in a file: ``meddistill run --config run.yaml`` (YAML or JSON) and ``meddistill config RUN``.

A settings file holds the fields of ``RunConfig`` under their own names (``teacher``, ``student_epochs``,
``label_column``, ``subgroup_columns`` ...) plus ``preset``; every value in it counts as given by the user, so a preset
never adapts it. ``settings_text(config)`` writes the file that reproduces a run: its preset, data and the settings
the user gave (the rest follow from the preset and the data again, as they did the first time).

Example:
    >>> values = read_settings("run.yaml")            # {"preset": "cpu", "data": "...", "teacher_epochs": 8}
    >>> print(settings_text(RunFolder(path).config()))
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from meddistill.errors import MedDistillError
from meddistill.settings.config import RunConfig
from meddistill.settings.declarations import SETTINGS

NOT_IN_FILES = ("given", "extra", "world_size")  # written by MedDistill, not settings a user gives
SUFFIXES = (".yaml", ".yml", ".json")


def _names() -> set[str]:
    return set(RunConfig().to_dict()) - set(NOT_IN_FILES)


def read_settings(path: str | Path) -> dict:
    """The settings in a YAML or JSON file, keys checked against the settings' names.

    Raises:
        MedDistillError: the file is missing, not YAML / JSON, not a mapping, or has a key that is not a setting
            (one sentence naming the key and the nearest valid name).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MedDistillError(f"{path} does not exist; give the settings file `meddistill config RUN` wrote.")
    if path.suffix.lower() not in SUFFIXES:
        raise MedDistillError(f"{path.name} is not a settings file; give a .yaml, .yml or .json file.")
    text = path.read_text(encoding="utf-8")
    try:
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0]
        raise MedDistillError(
            f"{path.name} is not valid {path.suffix.lstrip('.').upper()} ({first}); fix it."
        ) from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise MedDistillError(f"{path.name} must hold one mapping of setting names to values, not a list or a value.")
    names = _names() | {"preset"}
    for key in values:
        if key not in names:
            near = _nearest(str(key), names)
            hint = f"; did you mean {near}?" if near else "; `meddistill run --help` lists the settings."
            raise MedDistillError(f"{path.name} has the key '{key}', which is not a setting{hint}")
    for key, value in values.items():
        problem = _type_problem(key, value)
        if problem:
            raise MedDistillError(f"{path.name}: {problem}; fix it.")
    return values


def _type_problem(key: str, value) -> str | None:
    """One phrase when ``value`` is not of the declared kind of setting ``key``, else None."""
    setting = SETTINGS.get(key)
    if setting is None or (value is None and (setting.optional or key == "preset")):
        return None
    kind = setting.value_kind
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if ok:
        return None
    names = {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }
    return f"'{key}' must be {names.get(kind, kind.__name__)}, got {value!r}"


def _nearest(key: str, names: set[str]) -> str | None:
    import difflib  # noqa: PLC0415

    found = difflib.get_close_matches(key.replace("-", "_"), sorted(names), n=1, cutoff=0.6)
    return found[0] if found else None


def merged(file_values: dict, flags: dict) -> dict:
    """The file's settings with the flags the user typed (not None) on top."""
    return {**file_values, **{k: v for k, v in flags.items() if v is not None}}


def settings_text(config: RunConfig) -> str:
    """The YAML file that reproduces ``config``'s run: the preset, the data and the settings given."""
    values = config.to_dict()
    chosen = {"preset": config.preset, "data": config.data}
    chosen.update({k: values[k] for k in config.given if k in _names()})
    header = "# MedDistill settings: meddistill run --config THIS_FILE (flags override it)\n"
    return header + yaml.safe_dump(chosen, sort_keys=False, allow_unicode=True)
