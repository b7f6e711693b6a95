"""Serves the app with everything loaded first: `python server.py` is `streamlit run app.py`,
except that the model, the embedder and the pages' libraries are loaded before the server
opens its port. The first student's first question then does not pay for them (about 30 s
on two cores when the first page load did), and the address the server prints is ready."""

import sys

from streamlit.web import cli

if __name__ == "__main__":
    print("Loading the model and the embedder…", flush=True)
    import pandas  # noqa: F401  (the Memory page's table)
    import plotly.graph_objects  # noqa: F401  (every chart)

    import ui

    ui.start_warmup()
    ui.wait_for_warmup()
    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    sys.exit(cli.main())
