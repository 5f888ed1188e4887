"""A reward-model stage on many GPUs: TRL's ``RewardTrainer`` under ``accelerate launch``.

Run by the job script that ``cascade.cluster.jobs`` writes::

    accelerate launch --num_machines N --num_processes N*G ... -m cascade.cluster.trl_rm \\
        --model PARENT_DIR --pairs pairs.jsonl --output_dir .../final --learning_rate 2e-6 ...

Everything after ``--model``/``--pairs`` is TRL's own ``RewardConfig``, parsed by transformers'
``HfArgumentParser`` (``cascade.cluster.train_config.rm_arguments`` writes those words from the
recipe). The model is the parent checkpoint with a one-logit sequence-classification head, as the
local RM trainer builds it; the result is a plain Hugging Face checkpoint.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class PairsArguments:
    """What TRL's RewardConfig does not carry: the starting model and the pairs file."""

    model: str = field(metadata={"help": "the parent checkpoint (Hugging Face folder)"})
    pairs: str = field(metadata={"help": "JSONL of {chosen, rejected} conversations"})


def parse(argv: Sequence[str]):
    """(PairsArguments, trl.RewardConfig) from command-line words, through TRL's own parser."""
    from transformers import HfArgumentParser
    from trl import RewardConfig

    parser = HfArgumentParser((PairsArguments, RewardConfig))
    return parser.parse_args_into_dataclasses(args=list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    pairs_args, config = parse(sys.argv[1:] if argv is None else argv)
    tokenizer = AutoTokenizer.from_pretrained(pairs_args.model)
    model = AutoModelForSequenceClassification.from_pretrained(pairs_args.model, num_labels=1)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    data = load_dataset("json", data_files=pairs_args.pairs, split="train")
    trainer = RewardTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(config.output_dir)
    tokenizer.save_pretrained(config.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
