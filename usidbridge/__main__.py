"""`python -m usidbridge` runs the command line."""

from .cli import main

main()
