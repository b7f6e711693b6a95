"""Memory vs Learning Lab: `streamlit run app.py`.

The entry point only routes: the home page is home.py, the others are pages/N_Name.py.
Declaring them here (rather than letting Streamlit discover pages/) lets the first entry
be called "Home" in the sidebar instead of the script's file name.
"""

from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Memory vs Learning Lab", page_icon="🧪", layout="wide")
HERE = Path(__file__).parent
pages = [st.Page("home.py", title="Home", default=True)]
pages += [st.Page(f"pages/{path.name}") for path in sorted((HERE / "pages").glob("[0-9]_*.py"))]
st.navigation(pages).run()
