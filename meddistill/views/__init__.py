"""Plain-Python helpers behind the dashboard's pages: tables, figures, live training state, cases.

The pages stay thin (read widgets, call these, render); nothing here imports Streamlit.
"""

from meddistill.views import cases, compare, dashboard, figures, live  # noqa: E402, F401  (the pages use them all)
