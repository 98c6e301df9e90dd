"""The dashboard pages: one Streamlit script per page, run by ``app.py`` through
``st.navigation`` (never imported).

Not called ``pages/``: Streamlit would also serve a folder of that name next to the entry script
as old-style pages, bypassing ``app.py`` (its page config and sidebar).
"""
