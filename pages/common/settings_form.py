"""The Train page's setting fields, made from the settings' declarations (``meddistill.settings.declarations``): a
declared setting with a ``page`` section appears here with its label, help and range, and nothing else is needed."""

from __future__ import annotations

from meddistill.settings.declarations import Setting, page_settings


def setting_widget(column, setting: Setting, value, preset: str, **limits):
    """One widget for ``setting`` in ``column`` showing ``value`` (the preset's); returns what the user picked.

    ``limits`` overrides the declared ``minimum`` / ``maximum`` / key suffix (e.g. teacher epochs from 0 when a
    teacher file is used as is).
    """
    key = f"{setting.name}_{preset}{limits.get('suffix', '')}"
    label, help_text = setting.shown_label, setting.help
    kind = setting.widget_kind
    if kind == "checkbox":
        return column.checkbox(label, bool(value), key=key, help=help_text)
    if kind == "select":
        options = list(setting.options or setting.choices)
        shown = setting.none_label
        if setting.options:
            return column.select_slider(
                label, options, value, key=key, help=help_text, format_func=lambda v: shown if v is None else str(v)
            )
        return column.selectbox(label, options, index=options.index(value), key=key, help=help_text)
    low = limits.get("minimum", setting.minimum)
    high = limits.get("maximum", setting.maximum)
    if setting.value_kind is float:
        low, high = (None if low is None else float(low)), (None if high is None else float(high))
        if value is None:  # an optional setting left empty: None runs (e.g. no time budget)
            return column.number_input(label, low, high, None, key=key, help=help_text, placeholder=setting.none_label)
        value = float(value)
        if kind == "slider":
            return column.slider(label, low, high, value, setting.step, key=key, help=help_text)
        fmt = "%.4f" if value and abs(value) < 0.1 else None
        return column.number_input(label, low, high, value, format=fmt, key=key, help=help_text)
    low, high = (None if low is None else int(low)), (None if high is None else int(high))
    if value is None:
        picked = column.number_input(label, low, high, None, key=key, help=help_text, placeholder=setting.none_label)
        return None if picked is None else int(picked)
    return int(column.number_input(label, low, high, int(value), key=key, help=help_text))


def section_fields(column, section: str, values: dict, preset: str, skip: tuple[str, ...] = ()) -> dict:
    """The widgets of every declared setting in ``section`` (except ``skip``) in ``column``; returns name -> value."""
    return {
        s.name: setting_widget(column, s, values[s.name], preset) for s in page_settings(section) if s.name not in skip
    }
