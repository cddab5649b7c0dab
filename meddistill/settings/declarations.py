"""Every setting of a run, declared once: its name, default, help, range, and where it appears.

``RunConfig`` (``meddistill.settings.config``) is built from ``SETTINGS``, filled by the lines of
``meddistill.settings.fields``; ``meddistill run``'s options
(``add_setting_options``) and the Train page's fields (``pages/common/settings_form.py``) are generated from the
same declarations, so adding a setting is one ``declare(...)`` line plus the code that uses it.

Example:
    >>> declare("label_smoothing", 0.0, "weight of the uniform target in the label loss", minimum=0.0, maximum=0.5,
    ...         page="advanced", label="Label smoothing")
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable

# The Train page's sections a setting can appear in (None: not on the page, set elsewhere or on the command line).
PAGE_SECTIONS = ("distillation", "schedule", "input", "advanced")


@dataclass(frozen=True)
class Setting:
    """One setting of a run.

    Attributes:
        name: The ``RunConfig`` field; the command-line option is ``--name-with-dashes``.
        default: The library's default (a preset may replace it; ``None`` allowed when ``optional``).
        help: One line for ``--help`` and the page's help icon.
        kind: ``bool``, ``int``, ``float``, ``str``, ``list`` or ``dict`` (taken from the default when not given).
        optional: ``None`` is a valid value (meaning "automatic" or "not given").
        minimum, maximum: The valid range of a number (the page's widget limits; checked by ``validate``).
        choices: The valid values.
        cli: Whether ``meddistill run`` takes it as an option.
        parse: Turns the command-line text into the value (default: ``kind``).
        cli_extra: Further ``add_argument`` keywords (``nargs``, ``const``, ``metavar``).
        page: The Train page section it appears in (``PAGE_SECTIONS``), or None.
        label: The page's label (default: the name in words).
        widget: ``number``, ``slider``, ``select`` or ``checkbox`` (default: from the kind).
        options: The values a ``select`` widget offers (None among them is shown as ``none_label``).
        none_label: How the page shows ``None``.
        step: The widget's step, for numbers.
    """

    name: str
    default: Any
    help: str
    kind: type | None = None
    optional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None
    cli: bool = True
    parse: Callable[[str], Any] | None = None
    cli_extra: dict = field(default_factory=dict)
    page: str | None = None
    label: str | None = None
    widget: str | None = None
    options: tuple | None = None
    none_label: str = "automatic"
    step: float | None = None

    @property
    def value_kind(self) -> type:
        return self.kind or type(self.default)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def shown_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def widget_kind(self) -> str:
        if self.widget:
            return self.widget
        if self.value_kind is bool:
            return "checkbox"
        return "select" if self.options or self.choices else "number"

    def out_of_range(self, value: Any) -> str | None:
        """One sentence when ``value`` is outside the declared range or choices, else None."""
        if value is None:
            return None if self.optional else f"{self.name} must be given"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}"
        low, high = self.minimum, self.maximum
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = (
                    f"between {low:g} and {high:g}"
                    if low is not None and high is not None
                    else (f"at least {low:g}" if low is not None else f"at most {high:g}")
                )
                return f"{self.name} must be {bounds}, got {value}"
        return None


SETTINGS: dict[str, Setting] = {}


def declare(name: str, default: Any, help: str, **details: Any) -> Setting:  # noqa: A002 - argparse's word
    """Declare a setting (see ``Setting``); declaring a name twice is an error."""
    if name in SETTINGS:
        raise ValueError(f"setting {name!r} is declared twice")
    SETTINGS[name] = Setting(name, default, help, **details)
    return SETTINGS[name]


def page_settings(section: str) -> list[Setting]:
    """The settings the Train page shows in ``section``, in declaration order."""
    return [s for s in SETTINGS.values() if s.page == section]


def comma_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (blanks dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def add_setting_options(parser: argparse.ArgumentParser, defaults: dict[str, Any]) -> None:
    """Add one option per declared command-line setting to ``parser`` (each defaulting to None: not given).

    Args:
        parser: ``meddistill run``'s parser.
        defaults: The library's defaults, named in the help text.
    """
    for setting in SETTINGS.values():
        if not setting.cli:
            continue
        text = setting.help
        if defaults.get(setting.name) not in (None, "", [], {}):
            text += f" (default {defaults[setting.name]})"
        kwargs: dict[str, Any] = {"help": text, **setting.cli_extra}
        if setting.value_kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = setting.parse or setting.value_kind
            if setting.choices is not None:
                kwargs["choices"] = list(setting.choices)
        parser.add_argument(setting.flag, dest=setting.name, **kwargs)
