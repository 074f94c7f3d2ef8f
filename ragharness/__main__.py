from ragharness.cli import main

main()
