"""The composed RRG model: X-ray → encoder → mapper → soft prompts → LoRA LM → FINDINGS text.

Teacher forcing sees ``[soft prompt (N)] + prompt tokens + " " + report tokens + EOS``
(right-padded); the loss is the mean over report tokens (and EOS) only.

Generation is instrumented for the paper's analyses: the probability of every
chosen token (Eq. 4, average confidence), the attention mass each generated
token puts on the N soft-prompt positions per layer (Eq. 2's numerator) and,
separately, on position 0 alone (the first soft-prompt token, where causal LMs
park attention they do not need: the "attention sink"), the number of attended
positions (Eq. 2's normaliser), and the soft prompts themselves (Eq. 3, cosine
similarity). Greedy decoding is a hand-written
KV-cache loop, so these are read off the very forward passes that chose the
tokens; beam search uses ``transformers`` ``generate`` and then re-scores the
chosen beams in one teacher-forced pass (exact, same definitions).

Attention weights need the ``eager`` attention implementation; the model
trains with the default (SDPA, faster) and switches to eager only while
``generate(output_attentions=True)`` runs.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from peft import PeftModel
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from rrgkit.models.config import PARAMETER_GROUPS, ModelConfig, parse_model_config
from rrgkit.models.encoder import VisionEncoder, build_encoder
from rrgkit.models.lm import apply_lora, load_lm
from rrgkit.models.mapper import build_mapper


@dataclass
class Generation:
    """Generated reports and, on request, what Eqs. 2 and 4 need; T = generated tokens incl. a final EOS."""

    texts: list[str]
    token_ids: list[list[int]]
    token_probs: list[np.ndarray] | None  # per report (T,): p(y_t | C, y_<t) of each chosen token
    prompt_attention: list[np.ndarray] | None  # per report (T, n_layers): mass on the soft prompt, head-averaged
    context_lengths: list[np.ndarray] | None  # per report (T,): positions attended when choosing y_t
    soft_prompts: Tensor  # (B, N, D_txt), detached, CPU
    sink_attention: list[np.ndarray] | None = None  # per report (T, n_layers): mass on position 0 alone, head-averaged


class RRGModel(nn.Module):
    """Vision encoder + mapping network + peft-wrapped causal LM, with its tokenizer."""

    def __init__(
        self,
        encoder: VisionEncoder,
        mapper: nn.Module,
        lm: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        prompt: str = "FINDINGS:",
        max_report_tokens: int = 96,
        config: ModelConfig | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.mapper = mapper
        self.lm = lm
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.max_report_tokens = max_report_tokens
        self.config = config
        self.eos_id = int(tokenizer.eos_token_id)
        self.prompt_ids: list[int] = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
        self._trainable: frozenset[str] = frozenset(PARAMETER_GROUPS)
        self.set_trainable(PARAMETER_GROUPS)

    # ----- parameters -------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``vision`` (encoder), ``mapper`` and ``lora``: the LM's trainable part.

        ``lora`` holds the LoRA adapters (pretrained LM base weights are never
        trained), or every LM weight for an LM without LoRA (``lm.lora: null``,
        the from-scratch GPT-2s), which has nothing pretrained to keep.
        """
        if isinstance(self.lm, PeftModel):
            lm_params = [p for n, p in self.lm.named_parameters() if "lora_" in n]
        else:
            lm_params = list(self.lm.parameters())
        return {"vision": list(self.encoder.parameters()), "mapper": list(self.mapper.parameters()), "lora": lm_params}

    def set_trainable(self, groups: Iterable[str]) -> None:
        """Train exactly ``groups``; a frozen encoder is also put (and kept, see :meth:`train`) in eval mode.

        Freezing weights is not enough for a CNN: in train mode BatchNorm keeps
        updating its running statistics from the batches, so a "frozen" encoder
        would still drift during stage 1 of the two-stage schedule.
        """
        groups = frozenset(groups)
        unknown = groups - set(PARAMETER_GROUPS)
        if unknown:
            raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; groups are {', '.join(PARAMETER_GROUPS)}")
        for p in self.parameters():
            p.requires_grad_(False)
        for name, params in self.parameter_groups().items():
            for p in params:
                p.requires_grad_(name in groups)
        self._trainable = groups
        self.train(self.training)

    def train(self, mode: bool = True) -> RRGModel:
        """Like ``nn.Module.train`` but a frozen encoder stays in eval mode (BatchNorm statistics fixed)."""
        super().train(mode)
        if mode and "vision" not in self._trainable:
            self.encoder.eval()
        return self

    def count_parameters(self) -> dict[str, int]:
        """Parameters per group, the frozen LM base, ``total`` and ``trainable`` (cf. the paper's Table 1)."""
        counts = {name: sum(p.numel() for p in params) for name, params in self.parameter_groups().items()}
        counts["lm_base"] = sum(p.numel() for p in self.lm.parameters()) - counts["lora"]
        counts["total"] = sum(p.numel() for p in self.parameters())
        counts["trainable"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts

    # ----- teacher forcing --------------------------------------------------------------------
    def soft_prompts(self, images: Tensor) -> Tensor:
        """Images (B, C, H, W) → soft visual prompts (B, N, D_txt)."""
        return self.mapper(self.encoder(images))

    def report_ids(self, reports: list[str]) -> list[list[int]]:
        """Token ids of each report (leading space, truncated at ``max_report_tokens``; EOS only if it fit)."""
        if isinstance(reports, str):
            raise TypeError("reports must be a list of strings, got one string")
        for i, report in enumerate(reports):
            if not isinstance(report, str) or not report.strip():
                raise ValueError(f"report {i} is empty or not a string ({report!r}); drop it from the batch")
        encoded = self.tokenizer([" " + r.strip() for r in reports], add_special_tokens=False)["input_ids"]
        return [ids[: self.max_report_tokens] + ([self.eos_id] if len(ids) <= self.max_report_tokens else []) for ids in encoded]

    def _embed(self, ids: Tensor) -> Tensor:
        return self.lm.get_input_embeddings()(ids)

    def _prefix(self, soft: Tensor) -> Tensor:
        """Soft prompt followed by the embedded text prompt: (B, N + P, D_txt)."""
        if not self.prompt_ids:
            return soft
        prompt = self._embed(torch.tensor(self.prompt_ids, device=soft.device))
        return torch.cat([soft, prompt.to(soft.dtype).unsqueeze(0).expand(soft.shape[0], -1, -1)], dim=1)

    def build_inputs(self, soft: Tensor, reports: list[str]) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forcing ``(inputs_embeds, attention_mask, labels)``; labels are -100 outside report tokens."""
        if len(reports) != soft.shape[0]:
            raise ValueError(f"got {soft.shape[0]} images but {len(reports)} reports")
        ids = self.report_ids(reports)
        prefix = self._prefix(soft)
        batch, k0 = prefix.shape[:2]
        width = max(len(x) for x in ids)
        tokens = torch.full((batch, width), self.tokenizer.pad_token_id, dtype=torch.long, device=soft.device)
        labels = torch.full((batch, k0 + width), -100, dtype=torch.long, device=soft.device)
        mask = torch.zeros((batch, k0 + width), dtype=torch.long, device=soft.device)
        mask[:, :k0] = 1
        for i, row in enumerate(ids):
            tokens[i, : len(row)] = torch.tensor(row, device=soft.device)
            labels[i, k0 : k0 + len(row)] = tokens[i, : len(row)]
            mask[i, k0 : k0 + len(row)] = 1
        embeds = torch.cat([prefix, self._embed(tokens).to(prefix.dtype)], dim=1)
        return embeds, mask, labels

    def forward(self, images: Tensor, reports: list[str]) -> Tensor:
        """Mean LM cross-entropy over the report tokens (incl. EOS) of the batch."""
        return self.loss_from_tokens(self.encoder(images), reports)

    def loss_from_tokens(self, visual_tokens: Tensor, reports: list[str]) -> Tensor:
        """:meth:`forward` from the encoder's output (B, L, D_img): what training uses when the features are cached.

        Logits are computed only at the positions that predict report tokens
        (``logits_to_keep``): the vocabulary projection is the largest matmul of
        a small LM, and the soft/text prompt positions carry no label.
        """
        soft = self.mapper(visual_tokens)
        embeds, mask, labels = self.build_inputs(soft, reports)
        k0 = soft.shape[1] + len(self.prompt_ids)
        width = labels.shape[1] - k0  # report positions
        predicting = torch.arange(k0 - 1, k0 - 1 + width, device=embeds.device)  # position t predicts token t + 1
        logits = self.lm(inputs_embeds=embeds, attention_mask=mask, logits_to_keep=predicting).logits
        return nn.functional.cross_entropy(logits.float().flatten(0, 1), labels[:, k0:].flatten(), ignore_index=-100)

    # ----- generation -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        images: Tensor | None = None,
        max_new_tokens: int = 96,
        num_beams: int = 1,
        output_scores: bool = False,
        output_attentions: bool = False,
        visual_tokens: Tensor | None = None,
    ) -> Generation:
        """Write a report per image (greedy, or beam search with ``num_beams`` > 1), in eval mode.

        ``output_scores`` fills ``token_probs``; ``output_attentions`` fills
        ``prompt_attention``, ``sink_attention`` and ``context_lengths`` (for the token y_t these
        come from the forward pass whose logits chose y_t: its query is the
        last prompt token for y_1 and y_{t-1} afterwards, attending to
        N + P + t - 1 positions). ``visual_tokens`` (the encoder's output) replaces ``images``
        where the features are cached.
        """
        if (images is None) == (visual_tokens is None):
            raise ValueError("generate needs exactly one of images and visual_tokens")
        if max_new_tokens < 1 or num_beams < 1:
            raise ValueError(f"max_new_tokens and num_beams must be >= 1, got {max_new_tokens}, {num_beams}")
        with self._eval_mode(), self._attention("eager" if output_attentions else None):
            soft = self.mapper(self.encoder(images) if visual_tokens is None else visual_tokens)
            prefix = self._prefix(soft)
            n_soft = soft.shape[1] if output_attentions else None
            if num_beams == 1:
                ids, probs, attn = self._greedy(prefix, max_new_tokens, n_soft)
            else:
                ids = self._beam(prefix, max_new_tokens, num_beams)
                probs, attn = self._score(prefix, ids, n_soft) if (output_scores or output_attentions) else (None, None)
        k0 = prefix.shape[1]
        return Generation(
            texts=[self.tokenizer.decode(x, skip_special_tokens=True).strip() for x in ids],
            token_ids=ids,
            token_probs=probs if output_scores else None,
            prompt_attention=[a[..., 0] for a in attn] if output_attentions else None,
            context_lengths=[k0 + np.arange(len(x)) for x in ids] if output_attentions else None,
            soft_prompts=soft.detach().float().cpu(),
            sink_attention=[a[..., 1] for a in attn] if output_attentions else None,
        )

    def _greedy(self, prefix: Tensor, max_new_tokens: int, n_soft: int | None):
        """KV-cache greedy loop over the batch; rows stop at EOS (they keep decoding, unrecorded).

        With ``n_soft`` set, also the attention masses of :func:`_prompt_mass` per token and layer.
        (Dropping finished rows from the batch and its cache was measured: no faster on a CPU, where a
        decoding step costs about the same for 30 rows as for 300.)
        """
        output_attentions = n_soft is not None
        batch = prefix.shape[0]
        ids: list[list[int]] = [[] for _ in range(batch)]
        probs: list[list[float]] = [[] for _ in range(batch)]
        attn: list[list[np.ndarray]] = [[] for _ in range(batch)]
        done = torch.zeros(batch, dtype=torch.bool, device=prefix.device)
        inputs, past = prefix, None
        cache_kw = self._cache_keyword()
        for _ in range(max_new_tokens):
            out = self.lm(inputs_embeds=inputs, use_cache=True, output_attentions=output_attentions, **{cache_kw: past})
            step_probs = out.logits[:, -1].float().softmax(-1)
            chosen = step_probs.argmax(-1)
            chosen_p = step_probs.gather(1, chosen[:, None])[:, 0].cpu().numpy()
            if output_attentions:  # (B, n_layers, 2): the last query's masses
                step_attn = _prompt_mass(out.attentions, slice(-1, None), n_soft)[:, 0].cpu().numpy()
            for i in np.flatnonzero(~done.cpu().numpy()):
                ids[i].append(int(chosen[i]))
                probs[i].append(float(chosen_p[i]))
                if output_attentions:
                    attn[i].append(step_attn[i])
            done |= chosen == self.eos_id
            if bool(done.all()):
                break
            inputs, past = self._embed(chosen[:, None]).to(prefix.dtype), out[cache_kw]
        return (
            ids,
            [np.asarray(p, dtype=np.float64) for p in probs],
            [np.stack(a) for a in attn] if output_attentions else None,
        )

    def _base_lm(self) -> nn.Module:
        return self.lm.get_base_model() if isinstance(self.lm, PeftModel) else self.lm

    def _cache_keyword(self) -> str:
        """The KV-cache argument (and output field): ``cache`` in recent transformers 5.x, ``past_key_values`` before."""
        return "cache" if "cache" in inspect.signature(self._base_lm().forward).parameters else "past_key_values"

    def _beam(self, prefix: Tensor, max_new_tokens: int, num_beams: int) -> list[list[int]]:
        out = self.lm.generate(
            inputs_embeds=prefix,
            attention_mask=torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device),
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            do_sample=False,
            eos_token_id=self.eos_id,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        ids = []
        for row in out.tolist():
            ids.append(row[: row.index(self.eos_id) + 1] if self.eos_id in row else row)
        return ids

    def _score(self, prefix: Tensor, ids: list[list[int]], n_soft: int | None):
        """Teacher-forced probabilities (and the attention masses of :func:`_prompt_mass`) of given continuations, in one pass."""
        output_attentions = n_soft is not None
        batch, k0 = prefix.shape[:2]
        width = max(len(x) for x in ids)
        tokens = torch.full((batch, width), self.eos_id, dtype=torch.long, device=prefix.device)
        for i, row in enumerate(ids):
            tokens[i, : len(row)] = torch.tensor(row, device=prefix.device)
        embeds = torch.cat([prefix, self._embed(tokens).to(prefix.dtype)], dim=1)
        out = self.lm(inputs_embeds=embeds, output_attentions=output_attentions)  # right padding: causal, harmless
        chosen_p = out.logits[:, k0 - 1 : k0 - 1 + width].float().softmax(-1).gather(2, tokens[:, :, None])[:, :, 0]
        probs = [chosen_p[i, : len(row)].cpu().numpy().astype(np.float64) for i, row in enumerate(ids)]
        if not output_attentions:
            return probs, None
        mass = _prompt_mass(out.attentions, slice(k0 - 1, k0 - 1 + width), n_soft).cpu().numpy()  # (B, W, n_layers, 2)
        attn = [mass[i, : len(row)] for i, row in enumerate(ids)]
        return probs, attn

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode for the duration, then every submodule's own train/eval flag restored."""
        flags = {m: m.training for m in self.modules()}
        self.eval()
        try:
            yield
        finally:
            for m, flag in flags.items():
                m.training = flag

    @contextlib.contextmanager
    def _attention(self, implementation: str | None) -> Iterator[None]:
        """Temporarily switch the LM's attention implementation (eager exposes attention weights)."""
        base = self._base_lm()
        previous = base.config._attn_implementation
        if implementation is None or implementation == previous:
            yield
            return
        base.set_attn_implementation(implementation)
        try:
            yield
        finally:
            base.set_attn_implementation(previous)


def _prompt_mass(attentions: tuple[Tensor, ...], queries: slice, n_soft: int) -> Tensor:
    """(B, Q, n_layers, 2): per query and layer, head-averaged attention mass on the soft prompt and on position 0.

    ``[..., 0]`` sums the first ``n_soft`` key positions (the soft prompt, Eq. 2's numerator); ``[..., 1]`` is
    position 0 alone, which is also the sink where causal LMs park attention, kept apart so that Eq. 2 can be
    read with and without it. ``attentions`` holds one (B, heads, queries, keys) tensor per layer.
    """
    return torch.stack([torch.stack([a[:, :, queries, :n_soft].float().sum(-1), a[:, :, queries, 0].float()], -1).mean(1)
                        for a in attentions], 2)


def build_model(cfg: dict | ModelConfig | None = None, trained_weights_follow: bool = False) -> RRGModel:
    """Build encoder, mapper and LoRA-wrapped LM from a ``model:`` config (dict or :class:`ModelConfig`).

    Random parts (encoder without weights, mapper, LoRA, scratch LMs) follow
    torch's global seed: call :func:`rrgkit.seed.seed_everything` first.
    ``trained_weights_follow``: a checkpoint is loaded next, so the encoder's initial weights are skipped
    (see :func:`rrgkit.models.encoder.build_encoder`).
    """
    cfg = parse_model_config(cfg)
    lm, tokenizer = load_lm(cfg.lm)
    embedding = lm.get_input_embeddings().weight
    rms = float(embedding.detach().float().pow(2).mean().sqrt())
    if cfg.lm.lora is not None:
        lm = apply_lora(lm, cfg.lm.lora)
    encoder = build_encoder(cfg.encoder, trained_weights_follow)
    mapper = build_mapper(cfg.mapper, encoder.out_dim, embedding.shape[1], out_scale=rms)
    return RRGModel(encoder, mapper, lm, tokenizer, cfg.prompt, cfg.max_report_tokens, config=cfg)
