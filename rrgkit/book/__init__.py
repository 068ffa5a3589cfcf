"""The executed book: papermill runs the notebooks, Jupyter Book renders them with strict settings."""
