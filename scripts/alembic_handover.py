"""Hand a legacy Alembic database over to chatdb: ``chatdb handover`` as a script.

For teams that run scripts rather than console commands; same options, same
code, same migrations (the installed chatdb's, whatever the working
directory). With chatdb installed::

    python scripts/alembic_handover.py --database URL [--dry-run] [--undo] [-v]
"""

from chatdb.cli.handover import handover_command

if __name__ == "__main__":
    handover_command(prog_name="alembic_handover.py")
