from chatdb.cli import run

run()
