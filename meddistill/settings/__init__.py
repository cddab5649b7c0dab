"""What a run is asked to do: its settings (``RunConfig``), each declared once, and the presets that fill them."""

from meddistill.settings.config import PRESETS, RunConfig, default_preset

__all__ = ["PRESETS", "RunConfig", "default_preset"]
