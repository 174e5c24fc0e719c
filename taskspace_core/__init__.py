"""taskspace_core: minimal-pair tasks, models, scoring, FTGD, probing and task-space statistics.

No Streamlit import anywhere in this package (see ARCHITECTURE.md).
"""

__version__ = "0.1.0"
