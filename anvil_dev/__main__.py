from anvil_dev.cli import main

main()
