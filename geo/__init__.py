"""Reading, cleaning and routing: road networks, planning units, agencies and travel times.

Nothing in this package imports Streamlit; the UI lives in ``ui/`` and ``app.py``.
"""
