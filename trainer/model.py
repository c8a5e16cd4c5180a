"""A Llama-style decoder: RMSNorm, rotary positions, SwiGLU MLP, causal attention, untied embeddings.

The paper's model (SPEC section 5) at any size the recipe asks for. Parameter names
separate what the language stage carries over from an NCA checkpoint (`blocks.*` and
`norm`) from what it replaces (`embed`, `head`, whose size depends on the vocabulary).
Attention goes through `scaled_dot_product_attention`, which picks the fastest kernel
for the device; the same code runs on CPU (fp32) and CUDA (bf16 autocast).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import ModelConfig


def padded_vocab(vocab_size: int, multiple: int) -> int:
    """The embedding rows for a vocabulary: rounded up to a multiple (10,002 -> 10,048 for 64)."""
    return math.ceil(vocab_size / multiple) * multiple


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rotary_tables(context: int, head_dim: int, theta: float) -> tuple:
    """cos and sin of every (position, frequency) pair, (context, head_dim / 2) each."""
    frequencies = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(context, dtype=torch.float64), frequencies)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first half, second half) pair of x (B, heads, T, head_dim) by its position's angle."""
    first, second = x.float().chunk(2, dim=-1)
    cos, sin = cos[: x.shape[-2]], sin[: x.shape[-2]]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.heads = config.heads
        self.wq = nn.Linear(config.d_model, config.d_model, bias=False)
        self.wk = nn.Linear(config.d_model, config.d_model, bias=False)
        self.wv = nn.Linear(config.d_model, config.d_model, bias=False)
        self.wo = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape

        def split_heads(projection):
            return projection(x).view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        q = apply_rotary(split_heads(self.wq), cos, sin)
        k = apply_rotary(split_heads(self.wk), cos, sin)
        attended = F.scaled_dot_product_attention(q, k, split_heads(self.wv), is_causal=True)
        return self.wo(attended.transpose(1, 2).reshape(batch, length, width))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate = nn.Linear(config.d_model, config.mlp_hidden, bias=False)
        self.up = nn.Linear(config.d_model, config.mlp_hidden, bias=False)
        self.down = nn.Linear(config.mlp_hidden, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attention = Attention(config)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


def initial_std(name: str, config: ModelConfig) -> float:
    """The scale parameter `name` starts at: norm weights are the constant 1; other weights are
    Normal(0, init_std), the output projections wo and down scaled by 1/sqrt(2 * layers) as GPT-2 does."""
    if name.endswith("norm.weight"):
        return 1.0
    if name.endswith(("wo.weight", "down.weight")):
        return config.init_std / math.sqrt(2 * config.layers)
    return config.init_std


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        rows = padded_vocab(vocab_size, config.vocab_multiple)
        self.embed = nn.Embedding(rows, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.head = nn.Linear(config.d_model, rows, bias=False)
        cos, sin = rotary_tables(config.context, config.d_model // config.heads, config.rope_theta)
        self.register_buffer("rotary_cos", cos, persistent=False)
        self.register_buffer("rotary_sin", sin, persistent=False)

    def init_weights(self, generator: torch.Generator) -> None:
        """Every weight at its initial_std, norms at 1: drawn from `generator` in parameter order,
        so the same seed gives the same bits."""
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                if name.endswith("norm.weight"):
                    parameter.fill_(1.0)
                else:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * initial_std(name, self.config))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, padded vocabulary) logits; rows past vocab_size are masked out."""
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.rotary_cos, self.rotary_sin)
        logits = self.head(self.norm(x)).float()
        if logits.shape[-1] > self.vocab_size:  # padding rows never win and take no probability
            logits[..., self.vocab_size:] = float("-inf")
        return logits

    def parameter_count(self, embeddings: bool = True) -> int:
        return sum(p.numel() for name, p in self.named_parameters()
                   if embeddings or not name.startswith(("embed.", "head.")))

    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6 x (non-embedding parameters + the head) for the matmuls,
        plus the attention scores and values (PaLM's appendix B, causal masking not discounted)."""
        matmul = 6 * (self.parameter_count(embeddings=False) + self.head.weight.numel())
        attention = 12 * self.config.layers * self.config.d_model * self.config.context
        return matmul + attention
