"""``querygen run --spec URI --run-dir URI``."""

from __future__ import annotations

from osft.common.stage_cli import stage_cli
from osft.querygen.stage import STAGE

cli = stage_cli(STAGE)

if __name__ == "__main__":
    cli()
