"""The `cascade` command line.

Each subcommand lives in its own module under ``cascade.commands`` and exposes
``register(subparsers)``. Command modules must import cheaply (no torch at module level),
so that ``cascade --help`` and torch-free commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cascade import __version__
from cascade.errors import CascadeError

# Order is the order shown in --help: the main job first, then the tools it is built from.
COMMAND_MODULES = [
    "run",
    "eval",
    "verify",
    "serve",
    "report",
    "init_model",
    "template",
]

DESCRIPTION = """\
cascade: Nemotron-Cascade post-training (arXiv 2512.13607) for everyone.

A base model becomes one model that answers in thinking mode (' /think') or instruct
mode (' /no_think'): multi-stage SFT, then Cascade RL, i.e. sequential domain-wise GRPO
stages (RLHF -> instruction-following RL -> math RL -> code RL -> SWE RL), with every
domain evaluated after every stage.
"""

EPILOG = """\
first steps:
  cascade run                          run the built-in tiny recipe on this CPU
  cascade init-model --size tiny --out models/tiny
                                       build a tiny tokenizer + Qwen3 model locally
  cascade template render --messages chat.json
                                       show exactly what the model sees
  cascade verify --verifier math --input preds.jsonl --output scored.jsonl
                                       score completions with the reward verifiers

Every subcommand has its own --help. Add --debug before the subcommand to see
tracebacks for errors.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cascade",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cascade {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"cascade.commands.{name}")
        except ModuleNotFoundError as exc:
            # A command whose module is not written yet is simply not offered.
            if exc.name == f"cascade.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that spin while waiting turn CPU contention (verifier workers, a
    # sandboxed test, another job) into much slower training steps on small machines
    # (docs/measurements.md); passive waiting costs nothing when the cores are free. It must be set
    # before torch loads, which happens lazily inside the commands.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except CascadeError as exc:
        if args.debug:
            raise
        print(f"error: {exc.format()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
