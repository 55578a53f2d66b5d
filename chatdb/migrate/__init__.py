"""The migration engine: loading files, recording history, executing a plan.

Migration files import only the public API, :mod:`chatdb.operations` and
:mod:`chatdb.fields`; everything in this package may change between versions.
"""
