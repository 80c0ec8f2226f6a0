"""One-off deployment and operations scripts, run by an admin as `python -m scripts.<name>` (never deployed code)."""
