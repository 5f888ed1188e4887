"""Reward-model scoring with tiny, randomly initialised Qwen3 models built here."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cascade.errors import CascadeError  # noqa: E402
from cascade.engine.reward_scorer import RewardModelScorer, scored_text  # noqa: E402

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
)


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(["The answer is 4. Paris is the capital of France."], trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML
    return tokenizer


@pytest.fixture(scope="module", params=["classifier", "causal_lm"])
def scorer(request, tmp_path_factory) -> RewardModelScorer:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tokenizer = _tokenizer()
    config = transformers.Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    cls = transformers.Qwen3ForSequenceClassification if request.param == "classifier" else transformers.Qwen3ForCausalLM
    path = tmp_path_factory.mktemp(request.param)
    cls(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    loaded = RewardModelScorer(path)
    assert loaded.kind == request.param
    return loaded


def test_scores_are_finite_and_deterministic(scorer) -> None:
    prompts = ["What is 2+2?", "Capital of France?"]
    responses = ["The answer is 4.", "Paris."]
    first = scorer.score(prompts, responses)
    assert len(first) == 2 and all(math.isfinite(s) for s in first)
    assert first != [first[0]] * 2  # different pairs, different scores
    assert scorer.score(prompts, responses) == first


def test_only_the_final_answer_is_scored(scorer) -> None:
    a, b, plain = scorer.score(
        ["What is 2+2?"] * 3,
        ["<think>2+2 is 4</think>The answer is 4.", "<think>Let me count: 1, 2, 3, 4.</think>\nThe answer is 4.", "The answer is 4."],
    )
    assert a == b == plain


def test_unfinished_reasoning_scores_the_whole_text(scorer) -> None:
    unfinished = "<think>The answer is 4 but"
    assert scored_text(unfinished) == unfinished
    assert scored_text("<think>x</think>Paris.") == "Paris."
    direct = scorer.score(["q"], [unfinished])
    assert direct == scorer.score(["q"], ["<think>x</think>" + unfinished])


def test_message_prompts_equal_string_prompts(scorer) -> None:
    as_text = scorer.score(["What is 2+2?"], ["4"])
    as_messages = scorer.score([[{"role": "user", "content": "What is 2+2?"}]], ["4"])
    assert as_text == as_messages


def test_a_padded_batch_scores_as_pairs_one_at_a_time(scorer) -> None:
    prompts = ["What is 2+2?", "Capital of France?", "q", "What is the capital of France, and why?"]
    responses = ["4", "Paris is the capital of France.", "The answer is 4. The answer is 4.", "<think>x</think>Paris."]
    batched = scorer.score(prompts, responses)
    alone = [scorer.score([p], [r])[0] for p, r in zip(prompts, responses)]
    assert len({len(scorer._ids(p, r)) for p, r in zip(prompts, responses)}) == 4  # every row padded differently
    assert batched == pytest.approx(alone, abs=1e-5)
    assert len(set(alone)) == 4
    # Equal answers in one call score exactly alike (a group of them has zero variance).
    twice = scorer.score(prompts + prompts, responses + responses)
    assert twice[:4] == twice[4:]


def test_bad_path(tmp_path) -> None:
    with pytest.raises(CascadeError, match="config.json"):
        RewardModelScorer(tmp_path)


def test_torch_free_verifier_modules_do_not_import_torch() -> None:
    code = (
        "import sys; from cascade.verifiers import load_builtin; load_builtin(); "
        "import cascade.verifiers.batch, cascade.verifiers.rewards, cascade.verifiers.extract, cascade.commands.verify; "
        "bad = [m for m in ('torch', 'transformers', 'cascade.engine.reward_scorer') if m in sys.modules]; "
        "sys.exit(f'imported: {bad}' if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
