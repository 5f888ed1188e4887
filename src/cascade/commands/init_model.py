"""`cascade init-model`: build a tokenizer and a random tiny Qwen3 model, offline."""

from __future__ import annotations

import argparse

from cascade.errors import CascadeError
from cascade.models.tiny import DIMENSIONS, SIZES, count_parameters

DESCRIPTION = """\
Build a model to train from scratch, entirely on this machine (nothing is downloaded):

  1. a byte-level BPE tokenizer, trained in well under a second on text the package
     generates itself (word problems, instructions, Python, SEARCH/REPLACE edits, chat),
     with the chat markers <|im_start|> <|im_end|> <think> </think> <tool_call>
     </tool_call> <|endoftext|> as single tokens and the cascade chat template attached;
  2. a randomly initialised Qwen3ForCausalLM (the Qwen3 architecture, only smaller).

The result is a Hugging Face directory (safetensors weights, config, tokenizer, chat
template, chat_template_training.jinja, generation_config.json with eos <|im_end|>) that
AutoTokenizer / AutoModelForCausalLM load like any downloaded model. The same --seed gives
the same vocabulary and the same weights.

sizes (--size sets defaults; every dimension flag overrides one):
{sizes}
head_dim follows hidden-size / heads unless --head-dim is given.
"""

EXAMPLES = """\
examples:
  cascade init-model --size tiny --out models/tiny
  cascade init-model --size small --out models/small --seed 1
  cascade init-model --size tiny --out models/wide --hidden-size 192 --heads 6 --kv-heads 2
  cascade init-model --size tiny --out models/tiny --force     # replace an existing model
"""


def _size_table() -> str:
    rows = [f"  {'':<21}" + "".join(f"{size:>12}" for size in SIZES)]
    for name in DIMENSIONS:
        rows.append(f"  {_flag(name):<21}" + "".join(f"{d[name]:>12}" for d in SIZES.values()))
    rows.append(f"  {'(parameters)':<21}"
                + "".join(f"{count_parameters(d):>12,}" for d in SIZES.values()))
    return "\n".join(rows)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "init-model",
        help="build a tokenizer + tiny random Qwen3 model locally",
        description=DESCRIPTION.format(sizes=_size_table()),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", choices=list(SIZES), default="tiny",
                        help="which defaults to start from (default: tiny)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory to create (refused if it exists and is not empty)")
    parser.add_argument("--force", action="store_true",
                        help="replace DIR even if it is not empty")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the tokenizer corpus and the weights (default: 0)")
    dims = parser.add_argument_group("model dimensions (override the size's defaults)")
    for name in DIMENSIONS:
        dims.add_argument(_flag(name), dest=name, type=int, metavar="N", default=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cascade.models.loading import hide_transformers_progress_bars
    from cascade.models.tiny import create_model

    # The command's output is its one summary line, not transformers' progress bars.
    hide_transformers_progress_bars()
    overrides = {name: getattr(args, name) for name in DIMENSIONS}
    try:
        result = create_model(args.out, args.size, seed=args.seed, force=args.force,
                              **overrides)
    except CascadeError as exc:
        if exc.field in DIMENSIONS:
            # Name the flag the user typed rather than the Python keyword.
            raise CascadeError(exc.message, file=exc.file, line=exc.line,
                               field=_flag(exc.field)) from exc
        raise
    print(result.summary())
    return 0
