"""MedDistill dashboard: ``streamlit run app.py``.

The router: every page is a titled ``st.Page`` (``pages/common/menu.py``); the pages live in ``pages/`` and stay
thin (read widgets, call ``meddistill``, render).
"""

import streamlit as st

from pages.common.menu import navigation_pages

st.set_page_config(page_title="MedDistill", page_icon="🩺", layout="wide")

# Streamlit's own sidebar menu is off (.streamlit/config.toml, showSidebarNavigation = false): before this script
# first runs it would list pages/ by file name. Every page draws the titled menu first in its sidebar (ui.page).
page = st.navigation(navigation_pages(), position="hidden")

# The whole library, imported once before any page runs. A first run imports torch and every module (seconds);
# a page switch meanwhile starts a second script run, which waits here for that import to finish instead of
# importing half-initialised modules beside it (Python's per-module import locks then report a deadlock).
import meddistill  # noqa: E402, F401
import meddistill.views  # noqa: E402, F401

page.run()
