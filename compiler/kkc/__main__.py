"""`python -m kkc`: the same command line as the `kkc` entry point."""

from kkc.cli import main

if __name__ == "__main__":
    main()
