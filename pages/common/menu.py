"""The app's menu, in one place: the pages ``app.py`` routes to and the titled links every page draws first in
its sidebar (Streamlit's own sidebar menu is off: before ``app.py`` first runs it would list ``pages/`` by file
name, and links drawn by ``app.py`` itself do not survive a deep link to another page)."""

import streamlit as st

# section -> (file, title, icon, url path); Home first.
MENU = {
    "": [("pages/home.py", "Home", ":material/home:", None)],
    "Build": [
        ("pages/data.py", "Data", ":material/folder_open:", "data"),
        ("pages/train.py", "Train", ":material/model_training:", "train"),
    ],
    "Results": [
        ("pages/compare.py", "Compare", ":material/leaderboard:", "compare"),
        ("pages/explain.py", "Explain", ":material/search:", "explain"),
        ("pages/review.py", "Review", ":material/rate_review:", "review"),
    ],
}


def navigation_pages() -> dict[str, list]:
    """``MENU`` as ``st.navigation`` takes it (the first page is the default)."""
    return {
        section: [
            st.Page(path, title=title, icon=icon, url_path=url, default=url is None)
            for path, title, icon, url in entries
        ]
        for section, entries in MENU.items()
    }


def draw_menu() -> None:
    """The titled links into the current container (the sidebar), Home first; nothing else, so that the first
    frame with a sidebar is the menu (a caption would show before the links' component has loaded)."""
    for entries in MENU.values():
        for path, title, icon, _ in entries:
            st.page_link(path, label=title, icon=icon)
