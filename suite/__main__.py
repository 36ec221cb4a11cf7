"""`python -m suite`: the `suite` command line (the form `torchrun -m suite` needs)."""

from suite.cli import main

main()
