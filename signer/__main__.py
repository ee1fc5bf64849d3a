"""Entry point: ``python -m signer ...``."""

from common.settings import run_main
from signer.cli import main

run_main(main)
