"""Choosing, parsing, masking and opening a database; the embedded local server."""
