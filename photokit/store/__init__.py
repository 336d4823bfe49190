"""The model store and file-safety helpers."""
