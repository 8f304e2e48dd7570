"""``python -m hedgerow``: the same as the `hedgerow` command."""

from hedgerow.cli import main

main()
