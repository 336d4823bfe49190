from photokit.cli.app import main

main()
