"""Per-token log-probs and entropies: values by hand, gradients against autograd's own."""

import math

import torch

from cascade.engine.logprobs import token_logprobs


def test_picked_logprob_and_entropy_by_hand():
    # Row 0: logits (0, ln 3) -> probabilities (1/4, 3/4). Row 1: uniform over two tokens.
    logits = torch.tensor([[[0.0, math.log(3.0)], [5.0, 5.0]]])
    picked, entropy = token_logprobs(logits, torch.tensor([[1, 0]]), with_entropy=True)
    assert torch.allclose(picked, torch.tensor([[math.log(0.75), math.log(0.5)]]))
    expected_entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert torch.allclose(entropy, torch.tensor([[expected_entropy, math.log(2.0)]]))


def test_picked_logprob_gradient_is_onehot_minus_softmax():
    logits = torch.tensor([[[0.0, math.log(3.0)]]], requires_grad=True)
    picked, _ = token_logprobs(logits, torch.tensor([[1]]), with_entropy=False)
    picked.sum().backward()
    # d log p_1 / d logits = onehot(1) - softmax = (0 - 1/4, 1 - 3/4)
    assert torch.allclose(logits.grad, torch.tensor([[[-0.25, 0.25]]]))


def test_picked_logprob_gradients_match_autograd_on_random_logits():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, requires_grad=True)
    targets = torch.randint(0, 11, (3, 5))
    weights = torch.randn(3, 5)
    ours, _ = token_logprobs(logits, targets, with_entropy=False)
    (ours * weights).sum().backward()
    ours_grad = logits.grad.clone()
    logits.grad = None
    reference = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    (reference * weights).sum().backward()
    assert torch.allclose(ours, reference.detach(), atol=1e-6)
    assert torch.allclose(ours_grad, logits.grad, atol=1e-6)
