"""HyenaDNA: the Hyena long-convolution operator, the pre-norm backbone and the LM head.

Implements Poli et al. 2023 ("Hyena Hierarchy", §3, eqs. 3-7) as used by HyenaDNA (Nguyen et al.
2023). Parameter names and shapes equal the official release's, so a release state dict loads
one to one (the key-prefix differences are handled in ``checkpoint.py``).

Shapes: tensors cross module boundaries as (B, L, D); inside the operator they are (B, D, L).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torch.utils.checkpoint import checkpoint

from hyenadna.config import ModelConfig
from hyenadna.ops import fft_engine, fft_policy, gelu_mlp, hyena_mixer, use_fast_ops
from hyenadna.ops.fftconv import fftconv
from hyenadna.ops.implicit_filter import fused_supported as implicit_filter_fused
from hyenadna.ops.implicit_filter import implicit_filter
from hyenadna.ops.lean import dense, filter_stream


class Sin(nn.Module):
    """sin(freq · x) with a trainable frequency vector (1, dim); one instance is shared by all
    activations of an implicit filter, as in the official model (its state dict then lists the
    same tensor as ``implicit_filter.{1,3,5}.freq``)."""

    def __init__(self, dim: int, w: float):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class PositionalEmbedding(nn.Module):
    """Positional features z(t) = [t, cos(f·ω t), −sin(f·ω t)] for t in [0, 1], built for l_max.

    Stored as buffers (not trained, as in every release); the filter for length L uses rows :L.
    """

    def __init__(self, emb_dim: int, l_max: int):
        super().__init__()
        bands = (emb_dim - 1) // 2
        t = torch.linspace(0, 1, l_max)[None, :, None]  # (1, L, 1)
        omega = 2 * math.pi * torch.arange(l_max, dtype=torch.float32)[None, :, None] / l_max
        freqs = torch.linspace(1e-4, bands - 1, bands)[None, None]  # (1, 1, bands)
        z = torch.exp(-1j * freqs * omega)  # (1, L, bands) complex
        self.register_buffer("z", torch.cat([t, z.real, z.imag], dim=-1))  # (1, L, emb_dim)
        self.register_buffer("t", t)

    def forward(self, seqlen: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.z[:, :seqlen], self.t[:, :seqlen]


class ExponentialModulation(nn.Module):
    """Decay window h(t) · (exp(−|δ_d| t) + shift); δ spans fast to slow decays across channels,
    so some channels see ~0.3 of the context and others all of it (1e-2 residual at t=0.3..1.5)."""

    def __init__(self, d: int, shift: float, modulate: bool = True,
                 fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5, target: float = 1e-2):
        super().__init__()
        self.shift = shift
        self.modulate = modulate
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        self.register_buffer("deltas", torch.linspace(min_decay, max_decay, d)[None, None])

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if not self.modulate:
            return h
        return h * (torch.exp(-t * self.deltas.abs()) + self.shift)


class HyenaFilter(nn.Module):
    """Implicit long filter: positional features → FFN with shared-sine activations → window.

    ``bias`` is the per-channel skip term D of the long convolution (official name).

    In eval mode under no_grad the filter is cached (scoring calls it once per batch and layer,
    ~L·64² FLOPs and a 4·L·D-byte result each time). The cache is keyed on the length, device,
    autocast state and every parameter's and buffer's storage and version counter, so an
    optimiser step, ``load_state_dict`` or ``.to()`` invalidates it; ``train()``/``eval()`` clear
    it. (Edits through ``param.data`` bypass version counters: call ``eval()`` again after those.)
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model * (cfg.order - 1)
        self.bias = nn.Parameter(torch.randn(d))
        self.pos_emb = PositionalEmbedding(cfg.emb_dim, cfg.l_max)
        act = Sin(cfg.filter_order, cfg.w)
        self.implicit_filter = nn.Sequential(
            nn.Linear(cfg.emb_dim, cfg.filter_order), act,
            nn.Linear(cfg.filter_order, cfg.filter_order), act,
            nn.Linear(cfg.filter_order, cfg.filter_order), act,
            nn.Linear(cfg.filter_order, d, bias=False),
        )
        self.modulation = ExponentialModulation(d, cfg.shift, cfg.modulate)
        self._cache: tuple | None = None  # (key, filter): plain attribute, never in state_dict

    def filter(self, seqlen: int) -> torch.Tensor:
        """The first ``seqlen`` filter taps, (1, L, d·(order−1)); cached in eval under no_grad."""
        return self._cached(self._filter, seqlen)

    def filter_t(self, seqlen: int) -> torch.Tensor:
        """The same taps channels-first, (d·(order−1), L) contiguous: what the FFT reads.

        Built in that layout (the last Linear as W · actᵀ, the window as a (d, L) outer
        product) rather than transposed afterwards: the strided copy of a transpose and its
        backward cost ~15 ms per layer at 1M on an H100.
        """
        return self._cached(self._filter_t, seqlen)

    def _cached(self, build, seqlen: int) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            return build(seqlen)
        return self._cached_eval(build, seqlen)

    @torch.compiler.disable  # the key (pointers, version counters) must not become graph guards
    def _cached_eval(self, build, seqlen: int) -> torch.Tensor:
        key = (build.__name__, *self._cache_key(seqlen))
        if self._cache is None or self._cache[0] != key:
            self._cache = None  # drop the stale filter before building the new one
            self._cache = (key, build(seqlen))
        return self._cache[1]

    def _filter(self, seqlen: int) -> torch.Tensor:
        z, t = self.pos_emb(seqlen)  # (1, L, emb_dim), (1, L, 1)
        return self.modulation(t, self.implicit_filter(z))  # (1, L, d·(order−1))

    def _filter_t(self, seqlen: int) -> torch.Tensor:
        # one fused Triton op on CUDA (hyenadna.ops.implicit_filter); the same maths by torch
        # ops elsewhere: the last Linear as W · actᵀ, the window as a (d, L) outer product
        z, t = self.pos_emb(seqlen)  # (1, L, emb_dim), (1, L, 1)
        ffn, mod = self.implicit_filter, self.modulation
        return implicit_filter(z[0], t[0, :, 0], ffn[0].weight, ffn[0].bias, ffn[2].weight,
                               ffn[2].bias, ffn[4].weight, ffn[4].bias, ffn[1].freq,
                               ffn[6].weight, mod.deltas[0, 0], mod.shift, mod.modulate)

    def fused(self) -> bool:
        """Whether ``filter_t`` runs as the fused op here (it then saves nothing but the
        parameters for its backward and recomputes the FFN there)."""
        return implicit_filter_fused(self.pos_emb.z, self.implicit_filter[-1].weight)

    def _cache_key(self, seqlen: int) -> tuple:
        device = self.pos_emb.z.device.type
        autocast = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device)
        state = tuple((t.data_ptr(), t._version, t.dtype, t.device)
                      for t in (*self.parameters(), *self.buffers()))
        return seqlen, autocast, state

    def train(self, mode: bool = True) -> HyenaFilter:
        self._cache = None
        return super().train(mode)


FILTER_CHECKPOINT_MIN_LEN = 1 << 18
"""Fast path without the fused filter op (no Triton): recompute the filter net in the backward
from this length on. Below it the ~45 extra kernel launches cost more time than the <= 800 MB
per layer they save (at 131k on an H100 the recompute was a measurable share of the large-1m
step; at 1M it saves ~3 GB per layer). The fused op recomputes by itself and keeps nothing."""


class HyenaOperator(nn.Module):
    """Hyena operator of order N (Poli et al. 2023, eq. 7), the attention replacement.

    Steps, for input u (B, L, D):
      1. project to (N+1)·D channels and run a causal depthwise short conv (kernel 3);
      2. split into gates x_0..x_{N−1} and value v;
      3. for i = N−1 .. 1: v = long_conv(v · x_i, h_i) + D_i · (v · x_i)  (FFT, causal);
      4. y = out_proj(v · x_0).

    Where ``hyenadna.ops.use_fast_ops`` says so (CUDA by default) and N = 2, steps 1-3 run as one
    memory-lean autograd node (``_mix_fast``); the plain code below is its reference twin.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.d_model, self.order, self.l_max = cfg.d_model, cfg.order, cfg.l_max
        width = cfg.d_model * (cfg.order + 1)
        self.in_proj = nn.Linear(cfg.d_model, width)
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model)
        # padding k-1 on both sides then keeping the first L outputs = causal padding.
        self.short_filter = nn.Conv1d(width, width, cfg.short_filter_order, groups=width,
                                      padding=cfg.short_filter_order - 1)
        self.filter_fn = HyenaFilter(cfg)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        seqlen = u.shape[1]
        if seqlen > self.l_max:
            raise ValueError(f"sequence length {seqlen} exceeds the model's l_max {self.l_max}")
        if self.order == 2 and use_fast_ops(u):  # CUDA by default; see hyenadna.ops
            # out_proj in the mixer's dtype with a fast bias gradient (hyenadna.ops.lean.dense)
            return dense(self._mix_fast(u), self.out_proj.weight, self.out_proj.bias)
        u = rearrange(self.in_proj(u), "b l d -> b d l")  # (B, (N+1)D, L)
        uc = self.short_filter(u)[..., :seqlen]  # (B, (N+1)D, L)
        *gates, v = uc.split(self.d_model, dim=1)  # N × (B, D, L), (B, D, L)
        k = rearrange(self.filter_fn.filter(seqlen)[0], "l (o d) -> o d l", o=self.order - 1)
        skip = rearrange(self.filter_fn.bias, "(o d) -> o d", o=self.order - 1)
        for i, x_i in enumerate(reversed(gates[1:])):
            v = fftconv(v * x_i, k[i], skip[i])  # (B, D, L)
        y = rearrange(v * gates[0], "b d l -> b l d")  # (B, L, D)
        return self.out_proj(y)

    def _mix_fast(self, u: torch.Tensor) -> torch.Tensor:
        """Steps 1-3 for order 2 as memory-lean autograd nodes (``hyenadna.ops.lean``): they
        save the bf16 input, z and the filter instead of every intermediate. (B, L, D) → same."""
        seqlen = u.shape[1]
        if (self.training and torch.is_grad_enabled() and seqlen >= FILTER_CHECKPOINT_MIN_LEN
                and not self.filter_fn.fused()):
            # The filter net's activations (~3 KB per position: (L, 64) per Sin, the (D, L)
            # window; ~3 GB per layer at 1M) are recomputed in the backward instead of stored.
            k = checkpoint(self.filter_fn.filter_t, seqlen, use_reentrant=False)
            side = None
        else:
            # short L on CUDA: on a side stream, beside in_proj and the short conv (and its
            # backward beside theirs); see hyenadna.ops.lean.filter_stream
            side = filter_stream(u) if u.is_cuda else None
            # (D, L), time contiguous as the FFT wants
            k = self.filter_fn.filter_t(seqlen) if side is None else self._filter_on(side, seqlen)
        dtype = _compute_dtype(u)  # the autocast dtype, as in_proj would run in on the plain path
        return hyena_mixer(u, self.in_proj.weight, self.in_proj.bias,
                           self.short_filter.weight, self.short_filter.bias, k,
                           self.filter_fn.bias, fft_policy=fft_policy(),
                           fft_engine=fft_engine(), k_stream=side,
                           compute_dtype=dtype)  # (B, L, D)

    @torch.compiler.disable  # stream switches stay out of compiled graphs
    def _filter_on(self, stream: torch.cuda.Stream, seqlen: int) -> torch.Tensor:
        """``filter_fn.filter_t(seqlen)`` on ``stream``, after the current stream's work so far
        (the optimizer's last update of the filter's parameters)."""
        stream.wait_stream(torch.cuda.current_stream(stream.device))
        with torch.cuda.stream(stream):
            return self.filter_fn.filter_t(seqlen)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a Linear would compute x in: autocast's if enabled on x's device, else x's."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


class Mlp(nn.Module):
    """Linear(d → d_inner) → GELU (tanh approximation, as released) → Linear(d_inner → d)."""

    def __init__(self, d_model: int, d_inner: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_inner)
        self.fc2 = nn.Linear(d_inner, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_fast_ops(x):  # same maths; keeps only x for the backward (hyenadna.ops.lean)
            return gelu_mlp(x.to(_compute_dtype(x)), self.fc1.weight, self.fc1.bias,
                            self.fc2.weight, self.fc2.bias)
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm block: residual += drop(h); h = mixer(LN1(residual)); residual += drop(h);
    h = mlp(LN2(residual)). The residual stream is kept in float32 (official residual_in_fp32)."""

    def __init__(self, cfg: ModelConfig, first: bool):
        super().__init__()
        self.mixer = HyenaOperator(cfg)
        self.mlp = Mlp(cfg.d_model, cfg.d_inner)
        self.norm1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)
        self.norm2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)
        self.dropout1 = nn.Dropout(cfg.embed_dropout if first else cfg.resid_dropout)
        self.dropout2 = nn.Dropout(cfg.resid_dropout)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        dropped = self.dropout1(hidden)
        residual = dropped.float() if residual is None else dropped + residual  # (B, L, D) fp32
        hidden = self.mixer(self.norm1(residual.to(self.norm1.weight.dtype)))
        residual = self.dropout2(hidden) + residual
        hidden = self.mlp(self.norm2(residual.to(self.norm2.weight.dtype)))
        return hidden, residual


class Embeddings(nn.Module):
    """Token embedding only: HyenaDNA has no absolute position embedding."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.d_model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)


class Backbone(nn.Module):
    """Embedding → n_layer Hyena blocks → final LayerNorm. (B, L) int64 → (B, L, D)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.gradient_checkpointing = cfg.gradient_checkpointing
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(Block(cfg, first=(i == 0)) for i in range(cfg.n_layer))
        self.drop_f = nn.Dropout(cfg.resid_dropout)
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_epsilon)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Final hidden states (B, L, D) after ``ln_f``, in the autocast/param dtype."""
        hidden, residual = self.embeddings(input_ids), None  # (B, L, D)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                hidden, residual = checkpoint(layer, hidden, residual, use_reentrant=False)
            else:
                hidden, residual = layer(hidden, residual)
        residual = self.drop_f(hidden) + residual
        return self.ln_f(residual.to(self.ln_f.weight.dtype))


class HyenaDNA(nn.Module):
    """Backbone plus a language-model head tied to the token embedding.

    ``model(input_ids)`` → next-token logits (B, L, padded_vocab_size);
    ``model.backbone(input_ids)`` → hidden states (B, L, d_model).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.backbone = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.padded_vocab_size, bias=False)
        _init_weights(self, cfg)
        self.lm_head.weight = self.backbone.embeddings.word_embeddings.weight  # tied

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.backbone(input_ids))

    def num_parameters(self) -> int:
        """Trainable parameters, counting shared tensors once (buffers excluded)."""
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides) -> HyenaDNA:
        """Load an official release directory or a hyenadna checkpoint file.

        Args:
            path: directory with ``config.json`` + ``weights.ckpt`` (official layout), or a
                ``.ckpt`` written by this project (pretraining or fine-tuning).
            overrides: ModelConfig fields to change before building (e.g.
                ``gradient_checkpointing=True``, ``embed_dropout=0.0``); architecture fields
                that would change parameter shapes make loading fail with a clear error.
        """
        from hyenadna.checkpoint import load_pretrained

        return load_pretrained(path, model_cls=cls, **overrides)


def compile_blocks(model: HyenaDNA) -> None:
    """torch.compile every block in place (parameter names and state dicts are unchanged).

    Dynamo fuses the LayerNorms, residual adds, dropout and the filter net; the fast path's
    mixer and MLP are ``torch.compiler.disable``d custom-backward ops and run as they are.
    """
    for layer in model.backbone.layers:
        layer.compile()


def _init_weights(model: nn.Module, cfg: ModelConfig) -> None:
    """Official (GPT-2) init: N(0, 0.02) for every Linear (the implicit filter's too) and the
    embedding, zero biases; the output projection of each residual branch (``out_proj``,
    ``fc2``) gets std 0.02/sqrt(2·n_layer) so the residual variance stays O(1) with depth."""
    std = cfg.initializer_range
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    for name, param in model.named_parameters():
        if name.endswith(("mixer.out_proj.weight", "mlp.fc2.weight")):
            nn.init.normal_(param, std=std / math.sqrt(2 * cfg.n_layer))
