"""The ``chatdb`` command line: one thin module per command group."""
