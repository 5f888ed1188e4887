"""Loss aggregation and the GRPO loss, against hand-computed numbers."""

import math

import pytest
import torch

from cascade.algo.losses import GRPOLoss, aggregate, clipped_policy_loss, k3_kl
from cascade.engine.logprobs import shifted_token_logprobs

torch.set_num_threads(1)

# Two responses of unequal length: A has 1 loss token, B has 3 (column 0 is a prompt token).
MASK = torch.tensor([[0, 1, 0, 0], [0, 1, 1, 1]])
PER_TOKEN = torch.tensor([[9.0, 2.0, 9.0, 9.0], [9.0, 1.0, 1.0, 1.0]])


def test_token_mean_weighs_every_token_equally():
    # (2 + 1 + 1 + 1) / 4 tokens = 1.25
    assert aggregate(PER_TOKEN, MASK, "token_mean", total_tokens=4, total_seqs=2).item() == pytest.approx(1.25)


def test_seq_mean_weighs_every_response_equally():
    # (2/1 + 3/3) / 2 responses = 1.5
    assert aggregate(PER_TOKEN, MASK, "seq_mean", total_tokens=4, total_seqs=2).item() == pytest.approx(1.5)


@pytest.mark.parametrize("agg", ["token_mean", "seq_mean"])
def test_micro_batches_sum_to_the_whole_batch_loss(agg):
    whole = aggregate(PER_TOKEN, MASK, agg, total_tokens=4, total_seqs=2)
    parts = sum(
        aggregate(PER_TOKEN[i : i + 1], MASK[i : i + 1], agg, total_tokens=4, total_seqs=2) for i in range(2)
    )
    assert parts.item() == pytest.approx(whole.item())


def test_unknown_aggregation_is_rejected():
    with pytest.raises(ValueError):
        aggregate(PER_TOKEN, MASK, "sum", total_tokens=4, total_seqs=2)  # type: ignore[arg-type]


def test_ppo_clip_and_clip_higher():
    logp = torch.tensor([[0.5, 0.5, math.log(0.5)]])
    old = torch.zeros(1, 3)
    # ratio e^0.5 = 1.648721 with A=+1: clipped at 1.2 -> loss -1.2, clip active
    loss, active = clipped_policy_loss(logp[:, :1], old[:, :1], torch.tensor([1.0]), clip_low=0.2, clip_high=0.2)
    assert loss.item() == pytest.approx(-1.2) and active.item()
    # same ratio with A=-1: min(-1.648721, -1.2) = -1.648721 -> loss 1.648721, clip inactive
    loss, active = clipped_policy_loss(logp[:, 1:2], old[:, 1:2], torch.tensor([-1.0]), clip_low=0.2, clip_high=0.2)
    assert loss.item() == pytest.approx(math.exp(0.5)) and not active.item()
    # ratio 0.5 with A=-1 and clip_low 0.2: min(-0.5, -0.8) = -0.8 -> loss 0.8
    loss, _ = clipped_policy_loss(logp[:, 2:], old[:, 2:], torch.tensor([-1.0]), clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx(0.8)
    # clip-higher: ratio 1.25 with A=+1 passes under clip_high 0.28 but is clipped at 0.2
    logp = torch.tensor([[math.log(1.25)]])
    high, _ = clipped_policy_loss(logp, torch.zeros(1, 1), torch.tensor([1.0]), clip_low=0.2, clip_high=0.28)
    sym, _ = clipped_policy_loss(logp, torch.zeros(1, 1), torch.tensor([1.0]), clip_low=0.2, clip_high=0.2)
    assert high.item() == pytest.approx(-1.25) and sym.item() == pytest.approx(-1.2)


def test_k3_kl_hand_value():
    # p = 0.5, ref = 0.25: delta = ln 0.5; e^delta - delta - 1 = 0.5 + 0.693147 - 1 = 0.193147
    kl = k3_kl(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]))
    assert kl.item() == pytest.approx(0.5 + math.log(2) - 1)
    assert k3_kl(torch.tensor([-1.3]), torch.tensor([-1.3])).item() == 0.0


def test_token_logprobs_are_aligned_to_positions():
    # vocab 2; logits at position t predict token t+1
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [0.0, 0.0]]])
    ids = torch.tensor([[1, 1, 0]])
    out, _ = shifted_token_logprobs(logits, ids, with_entropy=False)
    # pos 0: 0; pos 1: p(1) under [0,0] = 0.5; pos 2: p(0) under [ln3, 0] = 3/4
    torch.testing.assert_close(out, torch.tensor([[0.0, math.log(0.5), math.log(0.75)]]))


def _batch(**extra):
    return {"loss_mask": MASK, "advantages": torch.tensor([1.0, -1.0]), **extra}


def test_on_policy_grpo_loss_value_and_gradient():
    logp = torch.full((2, 4), -0.7, requires_grad=True)
    loss_fn = GRPOLoss(loss_agg="token_mean", total_tokens=4, total_seqs=2)
    loss, metrics = loss_fn(logp, _batch())
    # ratio is 1: loss = -(1/4) * (1*1 + (-1)*3) = 0.5
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    # d loss / d logp = -A / N on loss tokens: -0.25 for A's token, +0.25 for B's three
    expected = torch.tensor([[0.0, -0.25, 0.0, 0.0], [0.0, 0.25, 0.25, 0.25]])
    torch.testing.assert_close(logp.grad, expected)
    assert metrics["loss_tokens"] == 4.0 and metrics["clip_active_sum"] == 0.0


def test_seq_mean_gradient_divides_by_each_length():
    logp = torch.zeros((2, 4), requires_grad=True)
    loss, _ = GRPOLoss(loss_agg="seq_mean", total_tokens=4, total_seqs=2)(logp, _batch())
    loss.backward()
    # -A / (len * n_seqs): A: -1/(1*2) = -0.5; B: +1/(3*2) = 0.166667 per token
    expected = torch.tensor([[0.0, -0.5, 0.0, 0.0], [0.0, 1 / 6, 1 / 6, 1 / 6]])
    torch.testing.assert_close(logp.grad, expected)


def test_kl_and_entropy_terms_and_sampler_gap():
    logp = torch.full((2, 4), math.log(0.5), requires_grad=True)
    entropy = torch.full((2, 4), 2.0)
    ref = torch.full((2, 4), math.log(0.25))
    sampler = logp.detach().clone()
    sampler[1, 3] += 0.4
    loss_fn = GRPOLoss(loss_agg="token_mean", total_tokens=4, total_seqs=2, kl_coef=0.1, entropy_coef=0.01)
    loss, metrics = loss_fn(logp, _batch(ref_logprobs=ref, sampler_logprobs=sampler), entropy=entropy)
    kl = 0.5 + math.log(2) - 1
    # 0.5 (policy term) + 0.1 * kl - 0.01 * 2 (every loss token has the same kl and entropy)
    assert loss.item() == pytest.approx(0.5 + 0.1 * kl - 0.02, rel=1e-5)
    assert metrics["kl_sum"] == pytest.approx(4 * kl, rel=1e-5)
    assert metrics["entropy_sum"] == pytest.approx(8.0)
    assert metrics["sampler_logprob_gap_sum"] == pytest.approx(0.4, rel=1e-5)
    assert metrics["sampler_logprob_gap_max"] == pytest.approx(0.4, rel=1e-5)


def test_capture_then_clipped_second_epoch():
    loss_fn = GRPOLoss(loss_agg="token_mean", total_tokens=4, total_seqs=2, capture_logprobs=True)
    first = torch.full((2, 4), -1.0)
    loss_fn(first, _batch(micro_index=3))
    assert torch.equal(loss_fn.captured[3], first)
    # next epoch: the policy moved up by 0.5 on every token; old = captured
    second = GRPOLoss(loss_agg="token_mean", total_tokens=4, total_seqs=2)
    loss, metrics = second(first + 0.5, _batch(old_logprobs=loss_fn.captured[3]))
    # A=+1 token clipped at 1.2 -> -1.2; A=-1 tokens unclipped -> +e^0.5 each; / 4
    assert loss.item() == pytest.approx((-1.2 + 3 * math.exp(0.5)) / 4, rel=1e-5)
    assert metrics["clip_active_sum"] == 1.0
