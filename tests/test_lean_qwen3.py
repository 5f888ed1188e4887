"""The lean Qwen3 forward computes what the transformers module stack computes: logits,
gradients, shared-prompt training and decoding, on the session's tiny model."""

from __future__ import annotations

import copy

import pytest
import torch

from cascade.engine.base import SamplingParams
from cascade.engine.lean_qwen3 import LeanQwen3, supports
from cascade.engine.local import LocalEngine
from cascade.engine.logprobs import place_columns, shifted_token_logprobs, token_logprobs
from cascade.engine.sampling import inverse_cdf_sample
from cascade.models.loading import load_model_and_tokenizer

torch.set_num_threads(1)
ATOL = 1e-5


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    model, _ = load_model_and_tokenizer(str(tiny_model_dir), device="cpu", dtype=torch.float32)
    return model


def padded(rows: list[list[int]], left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        cols = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, cols] = torch.tensor(row)
        mask[i, cols] = 1
    return ids, mask


def random_rows(lengths: list[int], seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(5, 1000, (n,), generator=g).tolist() for n in lengths]


def grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def test_supports_qwen3_and_refuses_what_it_does_not_model(model):
    assert supports(model)
    sliding = copy.deepcopy(model)
    sliding.config.use_sliding_window = True
    assert not supports(sliding)
    other = copy.deepcopy(model)
    other.config.hidden_act = "gelu"
    assert not supports(other)
    assert not supports(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("left", [False, True])
def test_logits_match_the_module_stack_on_padded_rows(model, left):
    ids, mask = padded(random_rows([20, 13, 5, 1]), left=left)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    model.eval()
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        got = LeanQwen3(model).forward(ids, mask)
    real = mask.bool()
    assert torch.allclose(got[real], want[real], atol=ATOL)


def test_bfloat16_logits_stay_close_to_the_module_stack(model):
    # bf16 is the GPU dtype; both sides normalise in float32, so they differ only by bf16
    # rounding in the matmuls (a logit scale of ~1: a loose absolute bound).
    half = copy.deepcopy(model).to(torch.bfloat16)
    ids, mask = padded(random_rows([12, 7], seed=5))
    with torch.no_grad():
        want = half(input_ids=ids, attention_mask=mask).logits.float()
        got = LeanQwen3(half).forward(ids, mask).float()
    real = mask.bool()
    assert (got[real] - want[real]).abs().max() < 0.1
    assert (got[real].argmax(-1) == want[real].argmax(-1)).float().mean() > 0.9


def test_gradients_match_the_module_stack(model):
    ids, mask = padded(random_rows([16, 9, 4], seed=1))
    real = mask.bool()
    model.zero_grad(set_to_none=True)
    model(input_ids=ids, attention_mask=mask).logits[real].logsumexp(-1).sum().backward()
    want = grads(model)
    LeanQwen3(model).forward(ids, mask)[real].logsumexp(-1).sum().backward()
    got = grads(model)
    assert got.keys() == want.keys() and len(got) == len(list(model.parameters()))
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-4, rtol=1e-4), name


def test_shared_prompt_forward_equals_the_full_forward_in_values_and_gradients(model):
    prompts = random_rows([7, 12, 3], seed=2)
    completions = random_rows([5, 1, 8, 3, 6, 2, 4, 7, 1], seed=3)
    rows = [prompts[i // 3] + c for i, c in enumerate(completions)]
    prompt_lens = torch.tensor([len(prompts[i // 3]) for i in range(len(rows))])
    ids, mask = padded(rows)
    completion_mask = torch.zeros_like(mask)
    for i, row in enumerate(rows):
        completion_mask[i, int(prompt_lens[i]):len(row)] = 1

    model.zero_grad(set_to_none=True)
    full, _ = shifted_token_logprobs(model(input_ids=ids, attention_mask=mask).logits, ids, False)
    (full * completion_mask).sum().backward()
    want = grads(model)
    logits, targets, columns = LeanQwen3(model).forward_shared_prompts(ids, mask, prompt_lens)
    picked, _ = token_logprobs(logits, targets, False)
    shared = place_columns(picked, columns, ids.shape[1])
    (shared * completion_mask).sum().backward()
    got = grads(model)

    assert torch.allclose(shared * completion_mask, full * completion_mask, atol=ATOL)
    assert not (shared * (1 - completion_mask)).any(), "prompt and pad positions stay 0"
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-4, rtol=1e-4), name


def test_place_columns_by_hand():
    values = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    columns = torch.tensor([[2, 3, -1], [0, 1, 2]])
    assert place_columns(values, columns, 4).tolist() == [[0, 0, 1, 2], [4, 5, 6, 0]]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generation_matches_the_module_stack_token_for_token(tiny_model_dir, temperature):
    lean = LocalEngine(str(tiny_model_dir), seed=0)
    plain = LocalEngine(str(tiny_model_dir), seed=0, lean_forward=False)
    assert lean.lean is not None and plain.lean is None
    # Repeated prompts (a GRPO group) share one prefill on the lean path.
    prompts = ["<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n", "x y z", "a"] * 3
    sampling = SamplingParams(temperature=temperature, top_p=0.9, max_new_tokens=24, seed=5)
    a, b = lean.generate(prompts, sampling), plain.generate(prompts, sampling)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    for x, y in zip(a, b):
        assert x.finish_reason == y.finish_reason
        assert max((abs(u - v) for u, v in zip(x.logprobs, y.logprobs)), default=0.0) < ATOL


def test_a_decode_session_refuses_steps_past_its_budget(model):
    lean = LeanQwen3(model)
    ids, mask = padded(random_rows([4]), left=True)
    with torch.inference_mode():
        session, logits = lean.start_decode(ids, mask.bool(), torch.tensor([0]), 1, torch.float32)
        session.step(logits.argmax(-1))
        with pytest.raises(RuntimeError, match="budget"):
            session.step(logits.argmax(-1))


def test_inverse_cdf_sampling_never_draws_a_zero_probability_token():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0]] * 4000)
    drawn = inverse_cdf_sample(probs, torch.Generator().manual_seed(0))
    assert set(drawn.tolist()) == {1, 3}
    assert abs((drawn == 1).float().mean().item() - 0.5) < 0.03
    # A single surviving token (top-k 1) is always the one drawn.
    assert inverse_cdf_sample(torch.tensor([[0.0, 0.0, 1.0]]), None).tolist() == [2]


def test_group_identical_by_hand():
    from cascade.engine.lean_qwen3 import group_identical

    assert group_identical([[1, 2], [3], [1, 2], [], [3], []]) == ([0, 1, 3], [0, 1, 0, 2, 1, 2])
