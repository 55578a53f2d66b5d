from chatdb.cli.main import main

main()
