"""Deciding: coverage, siting of new agencies and district allocation (分片包干).

Nothing in this package imports Streamlit.
"""
