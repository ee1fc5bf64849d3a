"""``python -m creatorpass`` = the ``creatorpass`` command."""

from common.settings import run_main
from creatorpass.cli import main

run_main(main)
