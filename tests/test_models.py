"""The locally built tokenizer, the tiny Qwen3 models, and loading any HF model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("cascade.chat.template")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from cascade.chat.template import SPECIAL_TOKENS, chat_template  # noqa: E402
from cascade.errors import CascadeError  # noqa: E402
from cascade.models import (  # noqa: E402
    SIZES,
    TRAINING_TEMPLATE_FILE,
    build_tokenizer,
    count_parameters,
    init_model,
    install_chat_template,
    load_model_and_tokenizer,
)
from cascade.models import tiny as tiny_module  # noqa: E402
from cascade.models.corpus import generate_corpus  # noqa: E402
from cascade.models.tiny import build_model, resolve_dims  # noqa: E402

torch.set_num_threads(1)

# The model card's single-turn prompts (its Chat Template section), the golden reference for the template.
CARD_THINKING = (
    "<|im_start|>system\nYou are a helpful and harmless assistant.<|im_end|>\n"
    "<|im_start|>user\ncalculate 1+1? /think<|im_end|>\n<|im_start|>assistant\n"
)
CARD_INSTRUCT = CARD_THINKING.replace(" /think", " /no_think")


@pytest.fixture(scope="module")
def tokenizer_1024():
    return build_tokenizer(1024, seed=0)


# -- corpus -------------------------------------------------------------------------------


def test_corpus_is_deterministic_and_covers_the_toy_world():
    first = generate_corpus(seed=3, target_chars=20_000)
    assert first == generate_corpus(seed=3, target_chars=20_000)
    assert first != generate_corpus(seed=4, target_chars=20_000)
    text = "\n".join(first)
    assert 20_000 <= len(text) < 25_000
    for marker in ("\\boxed{", "def ", "<<<<<<< SEARCH", ">>>>>>> REPLACE", "\"arguments\"",
                   " /think", " /no_think", "Question: ", "assistant\n"):
        assert marker in text, marker


# -- tokenizer ----------------------------------------------------------------------------


def test_tokenizer_has_exactly_the_requested_size(tokenizer_1024):
    assert len(tokenizer_1024) == 1024
    assert len(build_tokenizer(300)) == 300


def test_chat_markers_are_single_tokens_that_survive_decoding(tokenizer_1024):
    for token in SPECIAL_TOKENS:
        ids = tokenizer_1024.encode(token, add_special_tokens=False)
        assert len(ids) == 1, token
        assert tokenizer_1024.decode(ids, skip_special_tokens=False) == token
    text = "<|im_start|>assistant\n<think>\nx</think>\n\n<tool_call>\n{}\n</tool_call><|im_end|>"
    ids = tokenizer_1024.encode(text, add_special_tokens=False)
    assert tokenizer_1024.decode(ids, skip_special_tokens=False) == text
    # Framing is special; reasoning/tool markup is not, so the parser still sees it.
    assert tokenizer_1024.decode(ids, skip_special_tokens=True) == (
        "assistant\n<think>\nx</think>\n\n<tool_call>\n{}\n</tool_call>"
    )


def test_eos_pad_and_no_bos(tokenizer_1024):
    assert tokenizer_1024.eos_token == "<|im_end|>"
    assert tokenizer_1024.pad_token == "<|endoftext|>"
    assert tokenizer_1024.bos_token is None
    assert tokenizer_1024.encode("hi", add_special_tokens=True) == tokenizer_1024.encode(
        "hi", add_special_tokens=False)


def test_digits_are_one_token_each(tokenizer_1024):
    tokens = tokenizer_1024.convert_ids_to_tokens(tokenizer_1024.encode("x=90210"))
    assert tokens[-5:] == ["9", "0", "2", "1", "0"]


def test_common_words_and_code_are_merged(tokenizer_1024):
    # A trained vocabulary compresses its own domain well below one token per character.
    for text in ("The answer is \\boxed{7}.", "def add(a, b):\n    return a + b\n",
                 "<<<<<<< SEARCH\n=======\n>>>>>>> REPLACE"):
        assert len(tokenizer_1024.encode(text)) < len(text) / 2, text


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_any_text_round_trips(tokenizer_1024, text):
    # Byte-level BPE has no unknown token: every string decodes back to itself.
    assert tokenizer_1024.decode(tokenizer_1024.encode(text)) == text


def test_tokenizer_is_deterministic_per_seed(tokenizer_1024):
    assert build_tokenizer(1024, seed=0).get_vocab() == tokenizer_1024.get_vocab()


def test_tokenizer_rejects_impossible_sizes():
    with pytest.raises(CascadeError, match="at least|too small"):
        build_tokenizer(100)
    with pytest.raises(CascadeError, match="too large for the built-in corpus"):
        build_tokenizer(50_000)


# -- sizes and dimensions -----------------------------------------------------------------


def test_parameter_counts_are_in_range():
    assert 500_000 <= count_parameters(SIZES["tiny"]) <= 1_000_000
    assert 3_000_000 <= count_parameters(SIZES["small"]) <= 10_000_000
    # Hand count for tiny: embeddings 1024*128; per layer q,o 128*128 each, k,v 128*64 each,
    # mlp 3*128*256, norms 2*128 + 2*32; four layers; final norm 128.
    assert count_parameters(SIZES["tiny"]) == 1024 * 128 + 4 * (
        2 * 128 * 128 + 2 * 128 * 64 + 3 * 128 * 256 + 2 * 128 + 2 * 32) + 128


@pytest.mark.parametrize("size", ["tiny", "small"])
def test_built_models_have_the_counted_parameters(size):
    dims = SIZES[size]
    tokenizer = build_tokenizer(dims["vocab_size"])
    model = build_model(resolve_dims(size, {}), tokenizer)
    assert sum(p.numel() for p in model.parameters()) == count_parameters(dims)


def test_resolve_dims_derives_head_dim_and_checks_shapes():
    assert resolve_dims("tiny", {}) == SIZES["tiny"]
    assert resolve_dims("tiny", {"heads": 8, "kv_heads": 4})["head_dim"] == 16
    # An explicit head_dim frees hidden_size from divisibility, as in Qwen3 itself.
    assert resolve_dims("tiny", {"hidden_size": 100, "head_dim": 16})["head_dim"] == 16
    assert resolve_dims("tiny", {"layers": None}) == SIZES["tiny"]
    bad = [
        ({"hidden_size": 7, "heads": 4}, "hidden_size"),
        ({"heads": 4, "kv_heads": 3}, "kv_heads"),
        ({"head_dim": 15}, "head_dim"),
        ({"layers": 0}, "layers"),
        ({"layers": 2.5}, "layers"),
        ({"vocab_size": 200}, "vocab_size"),
        ({"depth": 3}, "depth"),
    ]
    for overrides, field in bad:
        with pytest.raises(CascadeError) as info:
            resolve_dims("tiny", overrides)
        assert info.value.field == field, overrides
    with pytest.raises(CascadeError, match="unknown size"):
        resolve_dims("huge", {})


# -- init_model: files, round trip, determinism, overrides ----------------------------------


def test_saved_directory_is_a_standard_hf_checkpoint(tiny_model_dir: Path):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json",
            TRAINING_TEMPLATE_FILE} <= names
    assert not any(name.endswith(".bin") for name in names)
    generation = json.loads((tiny_model_dir / "generation_config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert generation["eos_token_id"] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert (tiny_model_dir / TRAINING_TEMPLATE_FILE).read_text() == chat_template(training=True)
    # Nothing but the model directory itself is left next to it (no staging leftovers).
    assert [p.name for p in tiny_model_dir.parent.iterdir()] == [tiny_model_dir.name]


def test_auto_classes_round_trip(tiny_model_dir: Path, tokenizer_1024):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert model.config.hidden_size == SIZES["tiny"]["hidden_size"]
    assert model.config.num_hidden_layers == SIZES["tiny"]["layers"]
    assert model.config.vocab_size == len(tokenizer) == SIZES["tiny"]["vocab_size"]
    assert tokenizer.chat_template == chat_template()
    sample = "<|im_start|>user\nWhat is 12 + 30? /think<|im_end|>\n<think>\n"
    assert tokenizer.encode(sample) == tokenizer_1024.encode(sample)
    ids = torch.tensor([tokenizer.encode(sample)])
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))
    assert torch.isfinite(logits).all()


def test_apply_chat_template_matches_the_model_card(tiny_model_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [{"role": "user", "content": "calculate 1+1?"}]
    for thinking, expected in ((True, CARD_THINKING), (False, CARD_INSTRUCT)):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=thinking)
        assert text == expected
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                        enable_thinking=False, return_dict=False)
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_end|>")) == 2


def test_same_seed_same_model_other_seed_other_weights(tiny_model_dir: Path, tmp_path: Path):
    again = init_model(tmp_path / "again", "tiny", seed=0)
    other = init_model(tmp_path / "other", "tiny", seed=1)
    assert (again / "tokenizer.json").read_text() == (tiny_model_dir / "tokenizer.json").read_text()
    first = load_file(tiny_model_dir / "model.safetensors")
    second = load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    third = load_file(other / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(first[key], third[key])


def test_building_does_not_disturb_the_callers_rng(tmp_path: Path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(SIZES["tiny"], build_tokenizer(300), seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_overrides_change_dimensions(tmp_path: Path):
    path = init_model(tmp_path / "m", "tiny", vocab_size=512, hidden_size=64, layers=1,
                      heads=2, kv_heads=1, intermediate_size=96, max_position=256)
    config = json.loads((path / "config.json").read_text())
    assert config["vocab_size"] == 512
    assert (config["hidden_size"], config["num_hidden_layers"]) == (64, 1)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (2, 1)
    assert (config["head_dim"], config["intermediate_size"]) == (32, 96)
    assert config["max_position_embeddings"] == 256
    assert AutoTokenizer.from_pretrained(path).model_max_length == 256


# -- init_model: where it writes ----------------------------------------------------------


def test_refuses_non_empty_directory_unless_forced(tmp_path: Path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(CascadeError, match="not empty") as info:
        init_model(out, "tiny", layers=1)
    assert info.value.file == str(out)
    assert (out / "notes.txt").read_text() == "keep me"
    init_model(out, "tiny", layers=1, force=True)
    assert not (out / "notes.txt").exists()
    assert (out / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_empty_directory_is_used(tmp_path: Path):
    (tmp_path / "m").mkdir()
    assert (init_model(tmp_path / "m", "tiny", layers=1) / "config.json").exists()


def test_force_never_replaces_the_working_directory(tmp_path: Path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.txt").write_text("x")
    monkeypatch.chdir(work)
    for target in (".", ".."):
        with pytest.raises(CascadeError, match="refusing"):
            init_model(target, "tiny", force=True)
    assert (work / "data.txt").exists()


def test_a_file_in_the_way_is_an_error(tmp_path: Path):
    (tmp_path / "m").write_text("")
    with pytest.raises(CascadeError, match="not a directory"):
        init_model(tmp_path / "m", "tiny", force=True)


def test_a_failed_save_leaves_nothing_behind(tmp_path: Path, monkeypatch):
    def fail(directory):
        raise OSError("disk full")

    monkeypatch.setattr(tiny_module, "write_training_template", fail)
    with pytest.raises(OSError, match="disk full"):
        init_model(tmp_path / "m", "tiny", layers=1)
    assert list(tmp_path.iterdir()) == []


# -- loading and installing the chat template ---------------------------------------------


def _foreign_tokenizer():
    """A byte-level tokenizer that knows only some ChatML markers and has its own template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    raw.train_from_iterator(["hello world, think about tools"] * 20, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>")
    tokenizer.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    return tokenizer


def test_install_chat_template_adds_missing_markers():
    tokenizer = _foreign_tokenizer()
    before = len(tokenizer)
    changes = install_chat_template(tokenizer)
    missing = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<|endoftext|>"]
    assert changes == [
        "installed cascade chat template (replacing the model's own)",
        f"added 5 special tokens ({', '.join(missing)})",
    ]
    assert len(tokenizer) == before + 5
    assert tokenizer.chat_template == chat_template()
    for token in SPECIAL_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    assert tokenizer.decode(tokenizer.encode("a<think>b</think>c"), skip_special_tokens=True) == (
        "a<think>b</think>c")
    assert install_chat_template(tokenizer) == []


def test_load_our_own_model_changes_nothing(tiny_model_dir: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="cascade.models.loading"):
        model, tokenizer = load_model_and_tokenizer(str(tiny_model_dir))
    assert [r for r in caplog.records if r.name == "cascade.models.loading"] == []
    assert model.dtype == torch.float32
    assert tokenizer.chat_template == chat_template()
    assert model.device.type == "cpu"
    model16, _ = load_model_and_tokenizer(tiny_model_dir, dtype="bfloat16")
    assert model16.dtype == torch.bfloat16


def test_load_foreign_model_installs_template_and_resizes(tmp_path: Path, caplog):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = _foreign_tokenizer()
    rows = len(tokenizer)
    config = Qwen3Config(vocab_size=rows, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                         intermediate_size=64)
    Qwen3ForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    with caplog.at_level(logging.WARNING, logger="cascade.models.loading"):
        model, loaded = load_model_and_tokenizer(str(tmp_path))
    assert len(loaded) == rows + 5
    assert model.get_input_embeddings().weight.shape[0] == len(loaded)
    assert loaded.pad_token == "<|endoftext|>"
    (message,) = [r.getMessage() for r in caplog.records if r.name == "cascade.models.loading"]
    assert "installed cascade chat template" in message
    assert "added 5 special tokens" in message
    assert f"resized embeddings from {rows} to {rows + 5} rows" in message
    text = loaded.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False,
                                      add_generation_prompt=True, enable_thinking=True)
    assert text.endswith("<|im_start|>user\nhello /think<|im_end|>\n<|im_start|>assistant\n")


def test_load_errors_are_cascade_errors(tmp_path: Path, monkeypatch):
    with pytest.raises(CascadeError, match="no such model directory"):
        load_model_and_tokenizer("./not-here")
    with pytest.raises(CascadeError, match="no such model directory"):
        load_model_and_tokenizer(str(tmp_path / "missing"))  # absolute: never a hub id
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CascadeError, match="no model hub is reachable"):
        load_model_and_tokenizer("some-org/some-model")
    (tmp_path / "weights.bin").write_text("")
    with pytest.raises(CascadeError, match="is a file"):
        load_model_and_tokenizer(str(tmp_path / "weights.bin"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CascadeError, match="cannot load") as info:
        load_model_and_tokenizer(str(empty))
    assert "\n" not in info.value.format()


def test_load_rejects_bad_dtype_and_device(tiny_model_dir: Path):
    with pytest.raises(CascadeError, match="unknown dtype"):
        load_model_and_tokenizer(str(tiny_model_dir), dtype="float8")
    with pytest.raises(CascadeError, match="unknown device"):
        load_model_and_tokenizer(str(tiny_model_dir), device="banana")
    if not torch.cuda.is_available():
        with pytest.raises(CascadeError, match="CUDA is not available"):
            load_model_and_tokenizer(str(tiny_model_dir), device="cuda")
