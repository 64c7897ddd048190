"""genstack command-line client (python -m genstack)."""
