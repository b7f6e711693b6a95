"""Serves the app with the model already loading: `python server.py` is `streamlit run app.py`
plus a warm-up, so the first student's first question does not wait for the model and the
embedder to load (about 30 s on two cores when the first page load paid for it)."""

import sys

from streamlit.web import cli

import ui  # importing it starts loading the model and the embedder in the background

if __name__ == "__main__":
    ui.start_warmup()
    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    sys.exit(cli.main())
