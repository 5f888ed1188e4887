"""LocalEngine on a tiny random Qwen3: generation against HF, log-probs, training calls."""

from __future__ import annotations

import math

import pytest
import torch

from cascade.chat.template import render
from cascade.engine.base import SamplingParams
from cascade.engine.local import LocalEngine
from cascade.engine.optim import OptimConfig

torch.set_num_threads(1)

QUESTIONS = ["Hi", "What is the capital of France? Answer briefly.", "Add 2 and 3."]


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> LocalEngine:
    return LocalEngine(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    return [render([{"role": "user", "content": q}], enable_thinking=i % 2 == 0) for i, q in enumerate(QUESTIONS)]


def hf_greedy(engine: LocalEngine, prompts: list[str], max_new_tokens: int, stop_ids: list[int]) -> list[list[int]]:
    """Plain ``model.generate`` on a left-padded batch, cut after the first stop token."""
    engine.tokenizer.padding_side = "left"
    enc = engine.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = engine.model.generate(
        **enc, do_sample=False, max_new_tokens=max_new_tokens,
        eos_token_id=stop_ids, pad_token_id=engine.tokenizer.pad_token_id,
    )
    rows = []
    for row in out[:, enc["input_ids"].shape[1]:].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in stop_ids), len(row))
        rows.append(row[:cut])
    return rows


def test_greedy_matches_hf_generate_token_for_token(engine, prompts):
    stop_ids = engine.default_stop_ids()
    ours = engine.generate(prompts, SamplingParams(max_new_tokens=24, temperature=0.0))
    theirs = hf_greedy(engine, prompts, 24, stop_ids)
    assert len({len(engine.tokenizer(p)["input_ids"]) for p in prompts}) == 3  # really left-padded
    assert [g.token_ids for g in ours] == theirs
    assert sum(len(t) for t in theirs) > 30  # not a trivially empty comparison


def test_generation_batch_size_does_not_change_results_or_order(tiny_model_dir, engine, prompts):
    small = LocalEngine(str(tiny_model_dir), device="cpu", generation_batch_size=1)
    sampling = SamplingParams(max_new_tokens=12, temperature=0.0)
    assert [g.token_ids for g in small.generate(prompts, sampling)] == [
        g.token_ids for g in engine.generate(prompts, sampling)
    ]


def test_same_seed_same_samples_other_seed_differs(engine, prompts):
    sampling = SamplingParams(max_new_tokens=16, temperature=1.0, top_p=0.95, top_k=50, seed=7)
    first = engine.generate(prompts, sampling)
    again = engine.generate(prompts, sampling)
    other = engine.generate(prompts, SamplingParams(max_new_tokens=16, temperature=1.0, top_p=0.95, top_k=50, seed=8))
    assert [g.token_ids for g in first] == [g.token_ids for g in again]
    assert [g.logprobs for g in first] == [g.logprobs for g in again]
    assert [g.token_ids for g in first] != [g.token_ids for g in other]


def test_stop_token_ends_the_row_and_sets_finish_reason(engine, prompts):
    free = engine.generate(prompts[:1], SamplingParams(max_new_tokens=20, temperature=0.0, stop_token_ids=(10**6,)))[0]
    assert free.finish_reason == "length" and len(free.token_ids) == 20
    stop = free.token_ids[5]
    first_hit = free.token_ids.index(stop)
    stopped = engine.generate(prompts[:1], SamplingParams(max_new_tokens=20, temperature=0.0, stop_token_ids=(stop,)))[0]
    assert stopped.finish_reason == "stop"
    assert stopped.token_ids == free.token_ids[: first_hit + 1]
    assert len(stopped.logprobs) == len(stopped.token_ids)
    assert stopped.text == engine.tokenizer.decode(stopped.token_ids, skip_special_tokens=False)


def test_logprobs_match_a_teacher_forced_forward_pass(engine, prompts):
    temperature = 0.7
    gens = engine.generate(prompts, SamplingParams(max_new_tokens=16, temperature=temperature, top_k=20, seed=3))
    for gen in gens:
        assert all(math.isfinite(lp) and lp <= 0 for lp in gen.logprobs)
        ids = torch.tensor([gen.prompt_ids + gen.token_ids])
        with torch.no_grad():
            logits = engine.model(input_ids=ids).logits[0].float()
        start = len(gen.prompt_ids)
        logp = torch.log_softmax(logits[start - 1 : -1] / temperature, dim=-1)
        expected = logp.gather(-1, torch.tensor(gen.token_ids)[:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(gen.logprobs), expected, atol=1e-4)


def test_top_k_one_is_greedy(engine, prompts):
    greedy = engine.generate(prompts, SamplingParams(max_new_tokens=10, temperature=0.0))
    top1 = engine.generate(prompts, SamplingParams(max_new_tokens=10, temperature=1.3, top_k=1, seed=5))
    assert [g.token_ids for g in top1] == [g.token_ids for g in greedy]


# -- training ----------------------------------------------------------------------------

def toy_batch(engine: LocalEngine, texts: list[str]) -> dict[str, torch.Tensor]:
    ids = [engine.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), engine.tokenizer.pad_token_id)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
    loss_mask = attention.clone()
    loss_mask[:, 0] = 0
    return {"input_ids": input_ids, "attention_mask": attention, "loss_mask": loss_mask}


class MeanNLL:
    needs_entropy = False

    def __init__(self, total_tokens: int) -> None:
        self.total = total_tokens
        self.seen = None

    def __call__(self, token_logprobs, batch, entropy=None):
        self.seen = token_logprobs.detach()
        return -(token_logprobs * batch["loss_mask"]).sum() / self.total, {"tokens": batch["loss_mask"].sum()}


TEXTS = ["hello there, general", "a", "the quick brown fox", "jumps over"]


def trainable(tiny_model_dir, **kwargs) -> LocalEngine:
    cfg = OptimConfig(lr=1e-2, scheduler="constant")
    return LocalEngine(str(tiny_model_dir), device="cpu", optim=cfg, **kwargs)


def test_token_logprobs_are_aligned_to_input_positions(tiny_model_dir):
    eng = trainable(tiny_model_dir)
    batch = toy_batch(eng, TEXTS[:2])
    loss_fn = MeanNLL(int(batch["loss_mask"].sum()))
    metrics = eng.forward_backward(batch, loss_fn)
    with torch.no_grad():
        logits = eng.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logp = torch.log_softmax(logits, dim=-1)
    row = batch["input_ids"][0]
    expected = logp[0, torch.arange(len(row) - 1), row[1:]]
    assert torch.allclose(loss_fn.seen[0, 1:], expected, atol=1e-5)
    assert torch.all(loss_fn.seen[:, 0] == 0)
    assert metrics["tokens"] == float(batch["loss_mask"].sum())
    assert metrics["loss"] > 0


def test_step_changes_parameters_and_reports_lr(tiny_model_dir):
    eng = trainable(tiny_model_dir)
    before = {k: v.clone() for k, v in eng.model.state_dict().items()}
    batch = toy_batch(eng, TEXTS)
    eng.forward_backward(batch, MeanNLL(int(batch["loss_mask"].sum())))
    update = eng.optim_step()
    assert update["lr"] == pytest.approx(1e-2) and update["step"] == 1 and update["grad_norm"] > 0
    changed = [k for k, v in eng.model.state_dict().items() if not torch.equal(v, before[k])]
    assert "model.embed_tokens.weight" in changed and len(changed) > len(before) // 2
    assert all(p.grad is None for p in eng.model.parameters())  # zeroed for the next update


def grads(eng: LocalEngine) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in eng.model.named_parameters() if p.grad is not None}


def test_two_half_batches_accumulate_to_the_full_batch_gradient(tiny_model_dir):
    full_engine, half_engine = trainable(tiny_model_dir), trainable(tiny_model_dir)
    full = toy_batch(full_engine, TEXTS)
    total = int(full["loss_mask"].sum())
    full_engine.forward_backward(full, MeanNLL(total))
    half_engine.forward_backward(toy_batch(half_engine, TEXTS[:2]), MeanNLL(total))
    half_engine.forward_backward(toy_batch(half_engine, TEXTS[2:]), MeanNLL(total))
    a, b = grads(full_engine), grads(half_engine)
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=1e-4), name


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir):
    plain, ckpt = trainable(tiny_model_dir), trainable(tiny_model_dir, gradient_checkpointing=True)
    # transformers 5.9/5.10 (verl's pins) name the flag is_gradient_checkpointing.
    assert getattr(ckpt.model, "is_activation_checkpointing", None) or ckpt.model.is_gradient_checkpointing
    batch = toy_batch(plain, TEXTS)
    total = int(batch["loss_mask"].sum())
    plain.forward_backward(batch, MeanNLL(total))
    ckpt.forward_backward(batch, MeanNLL(total))
    a, b = grads(plain), grads(ckpt)
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_entropy_is_passed_when_the_loss_asks_for_it(tiny_model_dir):
    eng = trainable(tiny_model_dir)
    seen = {}

    def loss_fn(token_logprobs, batch, entropy=None):
        seen["entropy"] = entropy.detach()
        return -(token_logprobs * batch["loss_mask"]).sum(), {}

    loss_fn.needs_entropy = True
    batch = toy_batch(eng, TEXTS[:2])
    eng.forward_backward(batch, loss_fn)
    entropy = seen["entropy"]
    assert entropy.shape == batch["input_ids"].shape
    assert torch.all(entropy[:, 0] == 0)
    vocab = eng.model.config.vocab_size
    assert torch.all(entropy[:, 1:] > 0) and torch.all(entropy <= math.log(vocab) + 1e-4)


def test_save_and_load_restore_weights_and_optimizer(tiny_model_dir, tmp_path):
    eng = trainable(tiny_model_dir)
    batch = toy_batch(eng, TEXTS)
    total = int(batch["loss_mask"].sum())
    eng.forward_backward(batch, MeanNLL(total))
    eng.optim_step()
    eng.save(tmp_path / "ckpt")
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja",
                 "chat_template_training.jinja", "optimizer.pt", "scheduler.pt", "rng_state.pt"):
        assert (tmp_path / "ckpt" / name).is_file(), name

    other = trainable(tiny_model_dir)
    other.load(tmp_path / "ckpt")
    assert other.step == 1
    for name, value in eng.model.state_dict().items():
        assert torch.equal(value, other.model.state_dict()[name]), name
    # The restored AdamW moments make the next update identical too.
    for e in (eng, other):
        e.forward_backward(batch, MeanNLL(total))
        e.optim_step()
    for name, value in eng.model.state_dict().items():
        assert torch.equal(value, other.model.state_dict()[name]), name


def test_inference_only_engine_cannot_step(engine):
    with pytest.raises(RuntimeError, match="inference only"):
        engine.optim_step()


# -- sampling primitives -----------------------------------------------------------------

def test_filter_logits_top_p_and_top_k_by_hand():
    from cascade.engine.sampling import filter_logits

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda out: torch.isfinite(out)[0].tolist()  # noqa: E731
    # top_p 0.7: token 1 is kept (0.5 ranked above it < 0.7), token 2 is not (0.8 above it).
    assert kept(filter_logits(logits, top_k=0, top_p=0.7)) == [True, True, False, False]
    assert kept(filter_logits(logits, top_k=0, top_p=0.96)) == [True, True, True, True]
    assert kept(filter_logits(logits, top_k=0, top_p=0.01)) == [True, False, False, False]
    assert kept(filter_logits(logits, top_k=3, top_p=1.0)) == [True, True, True, False]
    assert kept(filter_logits(logits, top_k=3, top_p=0.7)) == [True, True, False, False]


def test_cpu_nucleus_from_candidates_by_hand():
    """A vocabulary wider than the CPU path's 16 candidates: row 0's nucleus lies inside
    them, row 1 is flat (its candidates hold 16/40 of the mass), so only a full sort can
    find its nucleus."""
    from cascade.engine.sampling import _NUCLEUS_CANDIDATES, filter_logits

    assert _NUCLEUS_CANDIDATES < 40
    peaked = torch.full((40,), 0.1 / 37)
    peaked[[7, 3, 30]] = torch.tensor([0.6, 0.2, 0.1])
    flat = torch.full((40,), 1 / 40)
    logits = torch.log(torch.stack([peaked, flat]))
    kept = torch.isfinite(filter_logits(logits, top_k=0, top_p=0.75))
    # Row 0: token 7 (nothing above it), token 3 (0.6 above it <= 0.75); token 30 has 0.8 above it.
    assert kept[0].nonzero().squeeze(-1).tolist() == [3, 7]
    # Row 1: 30 tokens of 1/40 have at most 29/40 = 0.725 above them; the 31st has 0.75,
    # which is not more than 0.75, so it stays too (to float rounding): 30 or 31 tokens.
    assert kept[1].sum().item() in (30, 31)


def test_cpu_nucleus_keeps_the_same_tokens_as_a_full_sort():
    from cascade.engine.sampling import _nucleus_by_sort, _nucleus_cpu

    generator = torch.Generator().manual_seed(0)
    for temperature in (0.3, 0.6, 1.0, 3.0):
        # Scales from peaked (the nucleus is a few tokens) to flat (it spans hundreds).
        logits = torch.randn((64, 1024), generator=generator) * torch.linspace(0.1, 8, 64)[:, None]
        logprobs = torch.log_softmax(logits / temperature, dim=-1)
        for top_p in (0.5, 0.9, 0.95):
            fast = torch.isfinite(_nucleus_cpu(logprobs, top_p))
            sort = torch.isfinite(_nucleus_by_sort(logprobs, top_p))
            assert torch.equal(fast, sort), (temperature, top_p)
            assert fast.any(dim=-1).all()


def test_sampled_frequencies_follow_the_distribution():
    from cascade.engine.sampling import next_tokens

    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    logits = torch.log(probs).expand(20000, 4).clone()
    generator = torch.Generator().manual_seed(0)
    tokens, logprobs = next_tokens(logits, SamplingParams(temperature=1.0), generator)
    freq = torch.bincount(tokens, minlength=4).float() / len(tokens)
    assert torch.allclose(freq, probs, atol=0.015)  # 3 sigma of a 20000-draw binomial is < 0.011
    assert torch.allclose(logprobs, torch.log(probs)[tokens])


def test_bad_device_and_dtype_are_cascade_errors(tiny_model_dir):
    from cascade.errors import CascadeError

    with pytest.raises(CascadeError) as info:
        LocalEngine(str(tiny_model_dir), device="cpu", dtype="float8")
    assert info.value.field == "dtype"
    with pytest.raises(CascadeError) as info:
        LocalEngine(str(tiny_model_dir), device="tpu-ish")
    assert info.value.field == "device"


def test_low_precision_training_keeps_fp32_master_weights(tiny_model_dir):
    inference = LocalEngine(str(tiny_model_dir), device="cpu", dtype="bfloat16")
    assert next(inference.model.parameters()).dtype == torch.bfloat16

    eng = LocalEngine(str(tiny_model_dir), device="cpu", dtype="bfloat16",
                      optim=OptimConfig(lr=1e-6, scheduler="constant"))
    assert all(p.dtype == torch.float32 for p in eng.model.parameters())
    before = {n: p.detach().clone() for n, p in eng.model.named_parameters()}
    batch = toy_batch(eng, TEXTS)
    eng.forward_backward(batch, MeanNLL(int(batch["loss_mask"].sum())))
    eng.optim_step()
    # An update of ~1e-6 survives in fp32; in bf16 weights it would round to no change.
    weight = "model.layers.0.mlp.up_proj.weight"
    after = eng.model.state_dict()[weight]
    assert 0 < (after - before[weight]).abs().max() < 1e-5
    vanished = (after.bfloat16() == before[weight].bfloat16()).float().mean()
    assert vanished > 0.9  # stored in bf16, almost every entry would not have moved
    gens = eng.generate(["hello"], SamplingParams(max_new_tokens=4, temperature=0.0))
    assert len(gens[0].token_ids) >= 1 and all(math.isfinite(x) for x in gens[0].logprobs)
