"""Streamlit-side helpers shared by the pages (query-string state, cached loading, downloads).

Pages import from here; nothing in this package runs a model or imports torch.
"""
