"""Entry point: ``python -m gateway [serve | settings | health-check | …]``."""

from common.settings import run_main
from gateway.cli import main

run_main(main)
