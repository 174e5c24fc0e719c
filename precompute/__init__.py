"""The taskspace command line: ``python -m precompute <command>``."""
