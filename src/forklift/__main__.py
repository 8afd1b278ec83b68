from forklift.cli import main

main()
