"""Page state and figures behind the dashboard's pages: case lists, live training state, plotly figures, the
Train page's form. The pages stay thin (read widgets, call these, render); nothing here imports Streamlit."""
