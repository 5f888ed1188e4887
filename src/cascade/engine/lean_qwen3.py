"""A lean forward pass for Qwen3 causal LMs, on the model's own parameters.

Why it exists: for the small models cascade trains on a CPU, a decode step of the Hugging
Face module stack is almost all Python and dispatch overhead (masks rebuilt per call, cache
objects, hooks, a dozen small modules per layer); the matmuls themselves take a fraction of
a millisecond. This module computes the same function with the fewest tensor ops it can:
q/k/v and gate/up fused into one matmul each, RMSNorm from one ``vector_norm`` call, one
attention call per layer, and a preallocated KV cache written in place; while decoding, the
norm weights are folded into the matmul that follows them. ``benchmarks/generate_throughput.py``
and ``benchmarks/grpo_vs_trl.py`` measure it against the module stack.

It reads the parameters of a loaded ``Qwen3ForCausalLM`` (no copy of the weights is
trained: gradients flow back into the module's parameters through the fused views), so
checkpoints, optimizers and every other tool keep seeing an ordinary transformers model.
Configurations it does not model exactly (sliding-window layers, another activation, another
architecture) are refused by :func:`supports`, and the engine then uses the module stack.
The rotary tables come from the model's own ``rotary_emb`` module, so rope scaling (YaRN)
is whatever transformers computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

SUPPORTED_MODEL_TYPES = ("qwen3",)


def supports(model: Any) -> bool:
    """True when ``model`` is a Qwen3 causal LM whose forward this module reproduces."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return False
    if not hasattr(model, "lm_head") or not hasattr(getattr(model, "model", None), "layers"):
        return False
    if getattr(config, "hidden_act", "silu") != "silu":
        return False
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    if getattr(config, "use_sliding_window", False) or any(t != "full_attention" for t in layer_types):
        return False
    return True


@dataclass
class _Layer:
    input_norm: torch.Tensor | None  # None when folded into ``qkv`` (decoding)
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    qk_norm: torch.Tensor  # [heads + kv_heads, head_dim]: q_norm's weight per query head, then k_norm's
    out: torch.Tensor
    out_bias: torch.Tensor | None
    post_norm: torch.Tensor | None  # None when folded into ``gate_up`` (decoding)
    gate_up: torch.Tensor
    down: torch.Tensor


class LeanQwen3:
    """The forward of one ``Qwen3ForCausalLM``. Every :meth:`forward` and :meth:`prefill`
    re-reads the parameters, so an instance stays valid across optimizer steps; the
    :meth:`decode` calls after a prefill reuse what it read."""

    def __init__(self, model: Any) -> None:
        if not supports(model):
            raise ValueError(f"lean forward does not support {type(model).__name__}")
        self.model = model
        config = model.config
        self.hidden = config.hidden_size
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or self.hidden // self.heads
        self.eps = config.rms_norm_eps
        half = self.head_dim // 2
        device = model.lm_head.weight.device
        self.swap_halves = torch.cat([torch.arange(half, self.head_dim), torch.arange(half)]).to(device)
        self.scale = self.head_dim ** -0.5
        self.eps_tensor = torch.tensor(self.eps, device=device, dtype=torch.float32)
        self.layers: list[_Layer] = []
        self.final_norm: torch.Tensor | None = None
        self.lm_weight: torch.Tensor = model.lm_head.weight

    def _fuse(self, fold_norms: bool = False) -> list[_Layer]:
        """Concatenate q/k/v and gate/up weights. Inside autograd the concatenation is part
        of the graph, so its gradient splits back onto the separate parameters.

        ``fold_norms`` (decoding, no autograd) scales the input columns of each matmul that
        follows an RMSNorm by the norm's weight, ``linear(norm(x) * w, W) == linear(norm(x),
        W * w)``, which saves one pass per norm on every decode step."""
        fused = []
        final = self.model.model.norm.weight
        self.final_norm = None if fold_norms else final
        self.lm_weight = self.model.lm_head.weight * final if fold_norms else self.model.lm_head.weight
        for layer in self.model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            bias = None
            if attn.q_proj.bias is not None:
                bias = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
            qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
            gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
            input_norm, post_norm = layer.input_layernorm.weight, layer.post_attention_layernorm.weight
            if fold_norms:
                qkv, gate_up = qkv * input_norm, gate_up * post_norm
                input_norm = post_norm = None
            fused.append(_Layer(
                input_norm=input_norm,
                qkv=qkv,
                qkv_bias=bias,
                qk_norm=torch.cat([attn.q_norm.weight.expand(self.heads, -1),
                                   attn.k_norm.weight.expand(self.kv_heads, -1)]),
                out=attn.o_proj.weight,
                out_bias=attn.o_proj.bias,
                post_norm=post_norm,
                gate_up=gate_up,
                down=mlp.down_proj.weight,
            ))
        return fused

    # -- pieces ----------------------------------------------------------------------------

    def _norm(self, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """RMSNorm over the last dim, ``x / sqrt(mean(x^2) + eps) * weight``. Written around
        one ``vector_norm`` because on CPU ``F.rms_norm`` runs as a chain of small ops, whose
        dispatch dominates at decode sizes (docs/measurements.md); same values to float rounding."""
        # In float32 like transformers' Qwen3RMSNorm (a no-op for a float32 model).
        x32 = x.float()
        length = torch.linalg.vector_norm(x32, dim=-1, keepdim=True)
        out = (x32 * torch.addcmul(self.eps_tensor, length, length, value=1.0 / x.shape[-1]).rsqrt()).to(x.dtype)
        return out if weight is None else out * weight

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
        """Rotary embedding as transformers applies it, ``x*cos + rotate_half(x)*sin`` with
        ``rotate_half(x) = (-x2, x1)``, written as one gather of the swapped halves times a
        sine whose first half is negated (:meth:`_rotary`): the same products, fewer ops."""
        return x * cos + x.index_select(-1, self.swap_halves) * signed_sin

    def _attention_input(self, w: _Layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Queries, keys and values ``[B, heads, T, head_dim]``. Query and key heads are
        normalised and rotated in one pass (same per-head norm as q_norm/k_norm, same rope)."""
        batch, length, _ = x.shape
        h = self._norm(x, w.input_norm)
        qkv = F.linear(h, w.qkv, w.qkv_bias).view(batch, length, -1, self.head_dim)
        qk_heads = self.heads + self.kv_heads
        qk = self._norm(qkv[:, :, :qk_heads], w.qk_norm)
        q, k = self._rope(qk.transpose(1, 2), cos, sin).split([self.heads, self.kv_heads], dim=1)
        return q, k, qkv[:, :, qk_heads:].transpose(1, 2)

    def _attention_output(self, w: _Layer, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        x = x + F.linear(attended.transpose(1, 2).reshape(batch, length, -1), w.out, w.out_bias)
        h = self._norm(x, w.post_norm)
        gate, up = F.linear(h, w.gate_up).chunk(2, dim=-1)
        return x + F.linear(F.silu(gate) * up, w.down)

    def _attend(self, q, k, v, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        if _explicit_attention_pays(q, mask):
            return self._attend_explicit(q, k, v, mask)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, scale=self.scale, enable_gqa=self.kv_heads != self.heads
        )

    def _attend_explicit(self, q, k, v, mask: torch.Tensor) -> torch.Tensor:
        """Attention as two matmuls and a softmax, under an additive ``mask [B|1, 1, T, S]``.
        The query heads that share a key/value head are stacked as extra query rows, so keys
        and values are never repeated."""
        batch, heads, length, dim = q.shape
        kv_heads, keys = k.shape[1], k.shape[2]
        group = heads // kv_heads
        scores = torch.matmul((q * self.scale).reshape(batch, kv_heads, group * length, dim), k.transpose(-1, -2))
        scores = scores.view(batch, kv_heads, group, length, keys) + mask.unsqueeze(1)
        weights = torch.softmax(scores, dim=-1).view(batch, kv_heads, group * length, keys)
        return torch.matmul(weights, v).view(batch, heads, length, dim)

    def _rotary_tables(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, signed_sin)`` for ``position_ids``, the sine's first half negated."""
        cos, sin = self.model.model.rotary_emb(x, position_ids)
        half = self.head_dim // 2
        return cos.to(x.dtype), torch.cat([-sin[..., :half], sin[..., half:]], dim=-1).to(x.dtype)

    def _rotary(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos, signed_sin = self._rotary_tables(x, position_ids)
        return cos.unsqueeze(1), signed_sin.unsqueeze(1)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits from the last layer's output: the final norm, then the head."""
        hidden = self._norm(hidden, self.final_norm)
        return F.linear(hidden, self.lm_weight, getattr(self.model.lm_head, "bias", None))

    # -- full sequences (training, scoring) ------------------------------------------------

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                *, checkpoint_layers: bool = False) -> torch.Tensor:
        """Logits ``[B, T, V]`` for right-padded rows (every row's real tokens first).

        With right padding a real token's causal window holds only real tokens, so plain
        causal attention is exact for them; pad positions get logits nobody reads. Rows with
        padding anywhere else go through an explicit mask.
        """
        self.layers = self._fuse()  # inside this call's autograd graph, from today's weights
        batch, length = input_ids.shape
        mask = None
        causal = True
        if attention_mask is not None and not _right_padded(attention_mask):
            causal = False
            mask = _padded_causal_mask(attention_mask.bool())
        if attention_mask is not None:
            positions = (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
        else:
            positions = torch.arange(length, device=input_ids.device).expand(batch, length)
        x = F.embedding(input_ids, self.model.model.embed_tokens.weight)
        cos, sin = self._rotary(x, positions)

        def block(w: _Layer, x: torch.Tensor) -> torch.Tensor:
            q, k, v = self._attention_input(w, x, cos, sin)
            return self._attention_output(w, x, self._attend(q, k, v, mask, causal))

        for w in self.layers:
            if checkpoint_layers and torch.is_grad_enabled():
                x = checkpoint(block, w, x, use_reentrant=False)
            else:
                x = block(w, x)
        return self.logits(x)

    def forward_shared_prompts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                               prompt_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The forward of right-padded rows ``prompt + completion`` in which many rows share
        a prompt (GRPO: G rollouts per prompt), running each distinct prompt once.

        Returns ``(logits [B, C, V], targets [B, C], columns [B, C])``: ``logits[b, j]``
        predicts completion token ``j`` of row b, ``targets[b, j]`` is that token and
        ``columns[b, j]`` its column in ``input_ids`` (``-1`` past the row's end). The
        result equals :meth:`forward` at those positions, and so do the gradients: the
        prompt's keys and values are indexed out to its rows, and autograd adds their
        gradients back up.
        """
        self.layers = self._fuse()
        device = input_ids.device
        ends = attention_mask.long().sum(dim=1)
        starts = prompt_lens.to(device).long()
        lens_host, ends_host = starts.tolist(), ends.tolist()
        firsts, rows_list = group_identical([ids[:p] for p, ids in zip(lens_host, input_ids.tolist())])
        rows = torch.tensor(rows_list, device=device)
        # Prompts, left-padded so every prompt ends in the last column.
        width = max(1, max(lens_host))
        prompt_ids = torch.zeros((len(firsts), width), dtype=torch.long, device=device)
        prompt_mask = torch.zeros((len(firsts), width), dtype=torch.bool, device=device)
        for r, b in enumerate(firsts):
            p = lens_host[b]
            if p:
                prompt_ids[r, width - p:] = input_ids[b, :p]
                prompt_mask[r, width - p:] = True
        # Completions, right-padded.
        c_width = max(1, max(e - p for e, p in zip(ends_host, lens_host)))
        offsets = torch.arange(c_width, device=device)
        columns = starts[:, None] + offsets[None]
        valid = columns < ends[:, None]
        completion = input_ids.gather(1, columns.clamp(max=input_ids.shape[1] - 1)).masked_fill(~valid, 0)

        prompt_positions = (prompt_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
        x_p = F.embedding(prompt_ids, self.model.model.embed_tokens.weight)
        x_c = F.embedding(completion, self.model.model.embed_tokens.weight)
        cos_p, sin_p = self._rotary(x_p, prompt_positions)
        cos_c, sin_c = self._rotary(x_c, columns)
        prompt_attn = _additive(_padded_causal_mask(prompt_mask), x_p.dtype)
        # A completion query sees its prompt's real tokens and the completion so far.
        seen = torch.cat([prompt_mask[rows][:, None, :].expand(-1, c_width, -1),
                          torch.ones((c_width, c_width), dtype=torch.bool, device=device).tril()
                          .expand(len(rows), -1, -1)], dim=2)
        completion_attn = _additive(seen[:, None], x_c.dtype)
        for w in self.layers:
            q_p, k_p, v_p = self._attention_input(w, x_p, cos_p, sin_p)
            q_c, k_c, v_c = self._attention_input(w, x_c, cos_c, sin_c)
            keys = torch.cat([k_p[rows], k_c], dim=2)
            values = torch.cat([v_p[rows], v_c], dim=2)
            attended_c = self._attend(q_c, keys, values, completion_attn, False)
            attended_p = self._attend(q_p, k_p, v_p, prompt_attn, False)
            x_p = self._attention_output(w, x_p, attended_p)
            x_c = self._attention_output(w, x_c, attended_c)
        hidden = torch.cat([x_p[:, -1:][rows], x_c[:, :-1]], dim=1)
        return self.logits(hidden), completion, columns.masked_fill(~valid, -1)

    # -- incremental decoding ----------------------------------------------------------------

    def start_decode(self, input_ids: torch.Tensor, key_mask: torch.Tensor, rows: torch.Tensor,
                     budget: int, cache_dtype: torch.dtype) -> tuple["DecodeSession", torch.Tensor]:
        """Prefill the distinct left-padded prompts ``input_ids [U, W]`` (``key_mask`` marks
        real tokens) and open a decode session for ``rows [B]``, row b continuing prompt
        ``rows[b]`` for up to ``budget`` tokens. Returns the session and the logits ``[B, V]``
        that pick every row's first new token.

        Rows that share a prompt (a GRPO group) share its prefill: the prompt runs once and
        its keys and values are copied to each of its rows.
        """
        self.layers = self._fuse(fold_norms=True)  # no autograd while decoding
        distinct, width = input_ids.shape
        capacity = width + budget
        device = input_ids.device
        positions = (key_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
        x = F.embedding(input_ids, self.model.model.embed_tokens.weight)
        # One rotary table for every position this batch can reach, indexed per step.
        table = torch.arange(capacity, device=device)[None]
        cos_table, sin_table = (t[0] for t in self._rotary_tables(x, table))
        mask = _additive(_padded_causal_mask(key_mask.bool()), x.dtype)
        cos, sin = cos_table[positions].unsqueeze(1), sin_table[positions].unsqueeze(1)
        shape = (len(self.layers), len(rows), self.kv_heads, capacity, self.head_dim)
        keys = torch.zeros(shape, device=device, dtype=cache_dtype)
        values = torch.zeros(shape, device=device, dtype=cache_dtype)
        for index, w in enumerate(self.layers):
            q, k, v = self._attention_input(w, x, cos, sin)
            keys[index, :, :, :width] = k[rows]
            values[index, :, :, :width] = v[rows]
            x = self._attention_output(w, x, self._attend(q, k, v, mask, False))
        key_visible = torch.ones((len(rows), capacity), dtype=torch.bool, device=device)
        key_visible[:, :width] = key_mask.bool()[rows]
        session = DecodeSession(
            lean=self, keys=keys, values=values, length=width,
            next_position=positions[rows, -1:] + 1,
            mask=_additive(key_visible[:, None, None, :], x.dtype),
            cos_table=cos_table, sin_table=sin_table,
        )
        return session, self.logits(x[:, -1])[rows]

    def decode_step(self, session: "DecodeSession", tokens: torch.Tensor) -> torch.Tensor:
        """Append one token per row (``tokens [B]``) and return the logits ``[B, V]`` for the next."""
        slot = session.length
        if slot >= session.keys.shape[3]:
            raise RuntimeError("decode session is full: more steps than its budget")
        x = F.embedding(tokens.unsqueeze(-1), self.model.model.embed_tokens.weight)
        position = session.next_position
        cos = session.cos_table[position].unsqueeze(1)
        sin = session.sin_table[position].unsqueeze(1)
        mask = session.mask[..., :slot + 1]
        for index, w in enumerate(self.layers):
            q, k, v = self._attention_input(w, x, cos, sin)
            keys, values = session.keys[index], session.values[index]
            keys[:, :, slot:slot + 1] = k
            values[:, :, slot:slot + 1] = v
            attended = self._attend(q, keys[:, :, :slot + 1], values[:, :, :slot + 1], mask, False)
            x = self._attention_output(w, x, attended)
        session.length = slot + 1
        session.next_position = position + 1
        return self.logits(x[:, -1])


@dataclass
class DecodeSession:
    """The state of one batch being decoded: keys and values of every layer
    ``[layers, B, kv_heads, capacity, head_dim]`` (columns ``[0, length)`` filled), each
    row's next position id ``[B, 1]``, the additive key mask ``[B, 1, 1, capacity]``, and
    the rotary tables."""

    lean: LeanQwen3
    keys: torch.Tensor
    values: torch.Tensor
    length: int
    next_position: torch.Tensor
    mask: torch.Tensor
    cos_table: torch.Tensor
    sin_table: torch.Tensor

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decode one token per row; returns the next-token logits."""
        return self.lean.decode_step(self, tokens)


def group_identical(sequences: list[list[int]]) -> tuple[list[int], list[int]]:
    """``(firsts, rows)``: the index of each distinct sequence's first occurrence, in order, and
    for every sequence which distinct one it is (an index into ``firsts``)."""
    distinct: dict[tuple[int, ...], int] = {}
    firsts: list[int] = []
    rows: list[int] = []
    for index, seq in enumerate(sequences):
        key = tuple(seq)
        if key not in distinct:
            distinct[key] = len(firsts)
            firsts.append(index)
        rows.append(distinct[key])
    return firsts, rows


# Longest query block for which the explicit attention above beats the CPU flash kernel:
# short blocks (the GRPO completions of small runs) favour it; longer ones grow its [T, S]
# score matrix until the flash kernel's blocking pays for itself (docs/measurements.md).
_EXPLICIT_ATTENTION_MAX_QUERIES = 128


def _explicit_attention_pays(q: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """CPU only (GPU kernels win at every size), an additive mask, and a short query block
    of more than one row (at one row, decoding, the two run level)."""
    return (q.device.type == "cpu" and mask is not None and mask.is_floating_point()
            and 1 < q.shape[2] <= _EXPLICIT_ATTENTION_MAX_QUERIES)


def _right_padded(attention_mask: torch.Tensor) -> bool:
    """True when every row is ones then zeros (or all ones)."""
    mask = attention_mask.long()
    return bool((mask[:, 1:] <= mask[:, :-1]).all())


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where attention is allowed, -inf elsewhere: SDPA on CPU runs faster with an additive
    float mask than with a boolean one."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))


def _padded_causal_mask(key_mask: torch.Tensor) -> torch.Tensor:
    """``[B, 1, T, T]`` boolean: causal, no pad keys, and every query sees itself (a pad
    query with no visible key would make SDPA return NaN; its output is never read)."""
    length = key_mask.shape[1]
    causal = torch.ones((length, length), dtype=torch.bool, device=key_mask.device).tril()
    mask = causal[None] & key_mask[:, None, :]
    mask |= torch.eye(length, dtype=torch.bool, device=key_mask.device)[None]
    return mask[:, None]
