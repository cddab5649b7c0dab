"""Safe file I/O: atomic writes (never half a file) and weights as ``.safetensors`` (never unpickled)."""

from meddistill.io.atomic import atomic_write, atomic_write_json, atomic_write_text
from meddistill.io.weights import load_weights, read_weights, save_weights

__all__ = ["atomic_write", "atomic_write_json", "atomic_write_text", "load_weights", "read_weights", "save_weights"]
