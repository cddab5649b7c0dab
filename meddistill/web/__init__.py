"""The student as one offline web page (ONNX Runtime Web vendored, pinned; see ``page``)."""

from meddistill.web.page import build_page, check_vendored, embedded_model

__all__ = ["build_page", "check_vendored", "embedded_model"]
