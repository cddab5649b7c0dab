"""MedDistill dashboard: ``streamlit run app.py``.

The router: every page is a titled ``st.Page``; the pages live in ``pages/`` and stay thin
(read widgets, call ``meddistill``, render).
"""

import streamlit as st

st.set_page_config(page_title="MedDistill", page_icon="🩺", layout="wide")

PAGES = {
    "": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Build": [
        st.Page("pages/data.py", title="Data", icon=":material/folder_open:", url_path="data"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    ],
    "Results": [
        st.Page("pages/compare.py", title="Compare", icon=":material/leaderboard:", url_path="compare"),
        st.Page("pages/explain.py", title="Explain", icon=":material/search:", url_path="explain"),
        st.Page("pages/review.py", title="Review", icon=":material/rate_review:", url_path="review"),
    ],
}

page = st.navigation(PAGES)  # the sidebar shows now, while the library below is still loading

# The whole library, imported once before any page runs. A first run imports torch and every module (seconds);
# a page switch meanwhile starts a second script run, which waits here for that import to finish instead of
# importing half-initialised modules beside it (Python's per-module import locks then report a deadlock).
import meddistill  # noqa: E402, F401
import meddistill.views  # noqa: E402, F401

page.run()
