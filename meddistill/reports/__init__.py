"""What a run reports: tables shared by the command line and the pages, the model card and model export."""

from meddistill.reports.export import export_run

__all__ = ["export_run"]
