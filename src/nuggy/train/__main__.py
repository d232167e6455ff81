"""``python -m nuggy.train --config X.yaml`` — the entry point for ``torchrun``:

torchrun --nproc-per-node 8 -m nuggy.train --config my.yaml
torchrun --nnodes 2 --node-rank 0 --master-addr HOST --nproc-per-node 8 -m nuggy.train --config my.yaml
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from nuggy.cli import train as cli

    parser = argparse.ArgumentParser(
        prog="python -m nuggy.train",
        description=cli.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(message)s" if rank == 0 else f"[rank {rank}] %(message)s",
        stream=sys.stderr,
    )
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main())
