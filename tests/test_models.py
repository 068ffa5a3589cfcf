"""The model library: config validation, shapes, LoRA targets, label masking, training groups, generation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import timm
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from rrgkit.models.config import ModelConfigError, parse_model_config
from rrgkit.models.rrg import build_model
from rrgkit.models.encoder import BUILTIN_ENCODERS, EncoderWeightsError, build_encoder
from rrgkit.models.lm import apply_lora, count_parameters, load_tokenizer, lora_targets
from rrgkit.models.mapper import MLPMapper, QueryMapper

TINY = {"encoder": {"name": "resnet-tiny"}, "lm": {"name": "gpt2-scratch-tiny"}, "max_report_tokens": 12}
REPORTS = [
    "The heart is normal in size. The lungs are clear.",
    "Mild cardiomegaly. Small left pleural effusion.",
    "No acute cardiopulmonary abnormality.",
    "Right lower lobe opacity concerning for pneumonia.",
]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model(TINY)


def images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


# ----- config -----------------------------------------------------------------------------------
def test_config_defaults_and_nesting():
    cfg = parse_model_config({"model": {"mapper": {"kind": "mlp"}, "lm": {"lora": {"targets": ["q_proj"]}}}})
    assert cfg.mapper.kind == "mlp" and cfg.mapper.n_queries == 10
    assert cfg.lm.lora.targets == ("q_proj",) and cfg.lm.lora.r == 8
    assert cfg.encoder.name == "resnet18-half" and cfg.prompt == "FINDINGS:"
    assert parse_model_config(cfg) is cfg
    assert parse_model_config({"lm": {"name": "gpt2-scratch-mini"}}).lm.lora is None
    assert parse_model_config({"lm": {"lora": None}}).lm.lora is None
    for c in (cfg, parse_model_config({"lm": {"name": "gpt2-scratch-tiny"}})):  # round trip through JSON
        assert parse_model_config(json.loads(json.dumps(dataclasses.asdict(c)))) == c


@pytest.mark.parametrize(
    "data, needles",
    [
        ({"encoder": {"nmae": "x"}}, ["profiles/x.yaml: model.encoder", "'nmae'", "name, weights, in_chans, stage"]),
        ({"encoder": {"stage": "first"}}, ["model.encoder.stage", "last, penultimate", "'first'"]),
        ({"mapper": {"kind": "perceiver"}}, ["model.mapper.kind", "query, mlp"]),
        ({"mapper": {"dropout": 1.5}}, ["model.mapper.dropout", "[0, 1)"]),
        ({"lm": {"lora": {"rank": 8}}}, ["model.lm.lora", "'rank'", "r, alpha"]),
        ({"lm": {"lora": {"targets": "qv"}}}, ["model.lm.lora.targets", "auto"]),
        ({"max_report_tokens": 0}, ["model.max_report_tokens", ">= 1"]),
        ({"lm": {"name": "gpt2-scratch-tiny", "lora": {"r": 8}}}, ["model.lm.lora", "from scratch", "lora: null"]),
        ({"lm": {"name": "gpt2-scratch-huge"}}, ["model.lm.name", "gpt2-scratch-tiny, gpt2-scratch-mini"]),
        ({"vision": {}}, ["unknown key 'vision'", "encoder, mapper, lm, prompt, max_report_tokens"]),
    ],
)
def test_config_errors_name_key_and_allowed_values(data, needles):
    with pytest.raises(ModelConfigError) as info:
        parse_model_config(data, source="profiles/x.yaml: model")
    for needle in needles:
        assert needle in str(info.value)


def test_unknown_encoder_and_missing_lm_are_clear():
    with pytest.raises(ValueError, match="unknown encoder 'resnet-9000'"):
        build_encoder(parse_model_config({"encoder": {"name": "resnet-9000"}}).encoder)
    with pytest.raises(ValueError, match="not in the local Hugging Face cache.*huggingface-cli download no-such/model"):
        build_model({"encoder": {"name": "resnet-tiny"}, "lm": {"name": "no-such/model"}})


# ----- encoder and mapper -----------------------------------------------------------------------
def test_encoder_tokens_and_stages():
    last = build_encoder(parse_model_config({"encoder": {"name": "resnet-tiny"}}).encoder)
    pen = build_encoder(parse_model_config({"encoder": {"name": "resnet-tiny", "stage": "penultimate"}}).encoder)
    assert last(images(2, 128)).shape == (2, 16, 128) and last.n_tokens(128) == 16
    assert pen(images(2, 128)).shape == (2, 64, 64) and pen.n_tokens(128) == 64


def test_encoder_weights_rgb_checkpoint_summed_for_grayscale(tmp_path):
    kwargs = dict(BUILTIN_ENCODERS["resnet-tiny"])
    rgb = timm.create_model(kwargs.pop("arch"), pretrained=False, in_chans=3, **kwargs)  # with its classifier head
    torch.save(rgb.state_dict(), tmp_path / "tiny.pt")
    enc = build_encoder(parse_model_config({"encoder": {"name": "resnet-tiny", "weights": str(tmp_path / "tiny.pt")}}).encoder)
    torch.testing.assert_close(enc.backbone.conv1.weight, rgb.conv1.weight.sum(1, keepdim=True))
    torch.testing.assert_close(enc.backbone.layer4[0].conv2.weight, rgb.layer4[0].conv2.weight)
    with pytest.raises(EncoderWeightsError, match="does not exist"):
        build_encoder(parse_model_config({"encoder": {"name": "resnet-tiny", "weights": str(tmp_path / "no.pt")}}).encoder)
    (tmp_path / "corrupt.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(EncoderWeightsError, match="corrupt.safetensors: cannot read encoder weights"):
        build_encoder(parse_model_config({"encoder": {"name": "resnet-tiny", "weights": str(tmp_path / "corrupt.safetensors")}}).encoder)
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "wrong.pt")
    with pytest.raises(EncoderWeightsError, match="missing"):
        build_encoder(parse_model_config({"encoder": {"name": "resnet-tiny", "weights": str(tmp_path / "wrong.pt")}}).encoder)


def test_mappers_shapes_and_head_check():
    tokens = torch.randn(3, 225, 48)
    assert QueryMapper(48, 64, n_queries=10, n_heads=8)(tokens).shape == (3, 10, 64)
    assert MLPMapper(48, 64)(tokens).shape == (3, 225, 64)
    with pytest.raises(ValueError, match="n_heads=7 must divide"):
        QueryMapper(48, 64, n_heads=7)


# ----- LoRA -------------------------------------------------------------------------------------
def tiny_llama() -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    )
    return LlamaForCausalLM(config)


def test_lora_targets_per_architecture():
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_layer=2, n_embd=32, n_head=4))
    assert lora_targets(gpt2) == ["c_attn"]
    assert lora_targets(tiny_llama()) == ["q_proj", "v_proj"]
    with pytest.raises(ValueError, match="cannot find the q and v projections"):
        lora_targets(torch.nn.Sequential(torch.nn.Linear(2, 2)))


def test_lora_parameter_counts_match_table1_formula():
    lora = parse_model_config({}).lm.lora  # r = 8
    llama = apply_lora(tiny_llama(), lora)  # q: 32→32, v: 32→16 (2 kv heads of 8)
    assert count_parameters(llama)["trainable"] == 2 * (32 * 8 + 8 * 32 + 32 * 8 + 8 * 16)
    gpt2 = apply_lora(GPT2LMHeadModel(GPT2Config(vocab_size=100, n_layer=12, n_embd=768, n_head=12)), lora)
    assert count_parameters(gpt2)["trainable"] == 294_912  # GPT2-S: the paper's "0.29M"


# ----- composed model ---------------------------------------------------------------------------
def test_shapes_groups_and_counts(tiny):
    x = images(2)
    assert tiny.encoder(x).shape == (2, 4, 128)  # 64 px / stride 32 → 2×2
    assert tiny.soft_prompts(x).shape == (2, 10, 128)
    groups = tiny.parameter_groups()
    assert set(groups) == {"vision", "mapper", "lora"}
    ids = [{id(p) for p in ps} for ps in groups.values()]
    assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    tiny.set_trainable(["vision", "mapper", "lora"])
    trainable = {id(p) for p in tiny.parameters() if p.requires_grad}
    assert trainable == set().union(*ids)
    counts = tiny.count_parameters()
    assert counts["lm_base"] == 0  # a from-scratch LM trains in full: its weights are the "lora" group
    assert counts["lora"] == sum(p.numel() for p in tiny.lm.parameters())
    assert counts["total"] == counts["trainable"] == counts["vision"] + counts["mapper"] + counts["lora"]


def test_labels_mask_everything_but_report_tokens(tiny):
    soft = torch.zeros(2, 10, 128)
    reports = ["Clear lungs.", " ".join(["word"] * 40)]  # the second is truncated at 12 tokens
    embeds, mask, labels = tiny.build_inputs(soft, reports)
    k0 = 10 + len(tiny.prompt_ids)
    ids = tiny.report_ids(reports)
    assert ids[0][-1] == tiny.eos_id and len(ids[1]) == 12 and tiny.eos_id not in ids[1]
    assert embeds.shape == (2, k0 + 12, 128) and mask.shape == labels.shape == (2, k0 + 12)
    assert (labels[:, :k0] == -100).all()
    for i, row in enumerate(ids):
        assert labels[i, k0 : k0 + len(row)].tolist() == row
        assert (labels[i, k0 + len(row) :] == -100).all()
        assert mask[i].sum() == k0 + len(row)
    assert tiny.tokenizer.decode(ids[0], skip_special_tokens=True).strip() == "Clear lungs."


def test_loss_equals_mean_cross_entropy_over_report_tokens(tiny):
    tiny.eval()
    x, reports = images(2), REPORTS[:2]
    with torch.no_grad():
        loss = tiny(x, reports)
        embeds, mask, labels = tiny.build_inputs(tiny.soft_prompts(x), reports)
        logits = tiny.lm(inputs_embeds=embeds, attention_mask=mask).logits
    targets = labels[:, 1:]
    keep = targets != -100
    manual = torch.nn.functional.cross_entropy(logits[:, :-1][keep], targets[keep])
    torch.testing.assert_close(loss, manual)
    with pytest.raises(ValueError, match="report 1 is empty"):
        tiny(x, ["fine", "  "])
    tiny.train()


def test_set_trainable_freezes_encoder_and_its_batchnorm(tiny):
    tiny.set_trainable(["mapper", "lora"])
    tiny.train()
    assert not tiny.encoder.training and tiny.mapper.training
    assert not any(p.requires_grad for p in tiny.encoder.parameters())
    bn = tiny.encoder.backbone.bn1
    before = bn.running_mean.clone()
    tiny(images(2, seed=3), REPORTS[:2]).backward()
    torch.testing.assert_close(bn.running_mean, before)
    assert all(p.grad is None for p in tiny.encoder.parameters())
    assert all(p.grad is not None for p in tiny.parameter_groups()["lora"])
    tiny.set_trainable(["vision", "mapper", "lora"])
    assert tiny.encoder.training
    with pytest.raises(ValueError, match="unknown parameter group"):
        tiny.set_trainable(["lm"])
    tiny.zero_grad()


def test_batched_generation_equals_one_by_one(tiny):
    x = images(3, seed=1)
    batch = tiny.generate(x, max_new_tokens=8, output_scores=True, output_attentions=True)
    assert batch.soft_prompts.shape == (3, 10, 128)
    for i in range(3):
        one = tiny.generate(x[i : i + 1], max_new_tokens=8, output_scores=True, output_attentions=True)
        assert one.texts[0] == batch.texts[i] and one.token_ids[0] == batch.token_ids[i]
        np.testing.assert_allclose(one.token_probs[0], batch.token_probs[i], atol=1e-5)
        np.testing.assert_allclose(one.prompt_attention[0], batch.prompt_attention[i], atol=1e-5)
    t = len(batch.token_ids[0])
    assert batch.prompt_attention[0].shape == (t, 2)  # 2 layers
    assert ((batch.prompt_attention[0] > 0) & (batch.prompt_attention[0] <= 1 + 1e-6)).all()
    assert batch.sink_attention[0].shape == (t, 2)
    assert ((batch.sink_attention[0] > 0) & (batch.sink_attention[0] < batch.prompt_attention[0])).all()
    k0 = 10 + len(tiny.prompt_ids)
    assert batch.context_lengths[0].tolist() == list(range(k0, k0 + t))
    assert tiny.training  # generate restores the mode


def test_greedy_generation_uses_the_current_cache_argument(tiny):
    """The KV cache is passed under the name this transformers expects: no deprecation warning, same text."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached = tiny.generate(images(2, seed=4), max_new_tokens=6)
    for i in range(2):  # the cache really is used: an uncached teacher-forced pass picks the same argmax tokens
        ids = cached.token_ids[i]
        prefix = tiny._prefix(tiny.soft_prompts(images(2, seed=4)[i : i + 1]))
        with torch.no_grad():
            tiny.eval()
            embeds = torch.cat([prefix, tiny._embed(torch.tensor([ids]))], 1)
            logits = tiny.lm(inputs_embeds=embeds).logits[0, prefix.shape[1] - 1 : prefix.shape[1] - 1 + len(ids)]
            tiny.train()
        assert logits.argmax(-1).tolist() == ids


def test_greedy_instrumentation_matches_teacher_forced_rescoring(tiny):
    x = images(2, seed=2)
    greedy = tiny.generate(x, max_new_tokens=6, output_scores=True, output_attentions=True)
    assert all(np.isclose(p.max(), p).any() for p in greedy.token_probs)
    with torch.no_grad(), tiny._eval_mode(), tiny._attention("eager"):
        probs, attn = tiny._score(tiny._prefix(tiny.soft_prompts(x)), greedy.token_ids, 10)
    for i in range(2):
        np.testing.assert_allclose(probs[i], greedy.token_probs[i], atol=1e-5)
        np.testing.assert_allclose(attn[i][..., 0], greedy.prompt_attention[i], atol=1e-5)
        np.testing.assert_allclose(attn[i][..., 1], greedy.sink_attention[i], atol=1e-5)
    beams = tiny.generate(x, max_new_tokens=6, num_beams=3, output_scores=True, output_attentions=True)
    assert len(beams.texts) == 2 and all(len(p) == len(ids) for p, ids in zip(beams.token_probs, beams.token_ids))
    plain = tiny.generate(x, max_new_tokens=6)
    assert plain.token_probs is None and plain.prompt_attention is None and plain.sink_attention is None
    assert plain.texts == greedy.texts


def test_prompt_mass_sums_the_soft_prompt_and_keeps_position_zero_apart():
    from rrgkit.models.rrg import _prompt_mass

    # one layer, two heads, one query over 4 keys; the soft prompt is the first 2 keys
    heads = torch.tensor([[0.5, 0.25, 0.125, 0.125], [0.1, 0.2, 0.3, 0.4]])
    mass = _prompt_mass((heads[None, :, None, :],), slice(-1, None), n_soft=2)
    assert mass.shape == (1, 1, 1, 2)
    torch.testing.assert_close(mass[0, 0, 0], torch.tensor([(0.75 + 0.3) / 2, (0.5 + 0.1) / 2]))


def test_same_seed_same_model_and_reports():
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = build_model(TINY)
        outputs.append(model.generate(images(2, seed=4), max_new_tokens=5, output_scores=True))
    assert outputs[0].texts == outputs[1].texts
    torch.testing.assert_close(outputs[0].soft_prompts, outputs[1].soft_prompts)
    np.testing.assert_array_equal(outputs[0].token_probs[1], outputs[1].token_probs[1])


def test_tiny_model_overfits_four_images():
    torch.manual_seed(0)
    model = build_model({**TINY, "mapper": {"dropout": 0.0}})
    x = images(4, seed=5)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(x, REPORTS)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_gradient_checkpointing_and_bf16_autocast_give_the_same_loss():
    torch.manual_seed(0)
    plain = build_model({**TINY, "mapper": {"dropout": 0.0}})
    torch.manual_seed(0)
    checkpointed = build_model({**TINY, "mapper": {"dropout": 0.0}, "lm": {"name": "gpt2-scratch-tiny", "gradient_checkpointing": True}})
    plain.eval(), checkpointed.eval()
    x = images(2)
    loss = checkpointed(x, REPORTS[:2])
    loss.backward()
    torch.testing.assert_close(loss, plain(x, REPORTS[:2]))
    assert all(p.grad is not None for p in checkpointed.parameter_groups()["vision"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = plain(x, REPORTS[:2])
    assert abs(low.item() - loss.item()) < 0.05 * loss.item()


# ----- real and paper-sized configurations ------------------------------------------------------
@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    """A tiny Llama saved as a local HF folder: the stand-in for OpenLLaMA (same q/v LoRA)."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = load_tokenizer("smollm2-135m")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_lora_model_trains_adapters_mapper_and_encoder_only(llama_folder):
    model = build_model({"encoder": {"name": "resnet-tiny"}, "lm": {"name": llama_folder}, "mapper": {"n_heads": 8}})
    model(images(2), REPORTS[:2]).backward()
    lora = {id(p) for p in model.parameter_groups()["lora"]}
    assert lora and all(p.grad is not None for p in model.parameter_groups()["lora"])
    assert all(p.grad is not None for p in model.encoder.parameters())
    base = [p for p in model.lm.parameters() if id(p) not in lora]
    assert base and all(p.grad is None and not p.requires_grad for p in base)


def test_paper_config_builds_with_resnet50_at_480px(llama_folder):
    """ResNet50 at 480 px → 15×15 = 225 tokens, query mapper, LoRA on q and v of a Llama."""
    model = build_model({"encoder": {"name": "resnet50"}, "lm": {"name": llama_folder}, "mapper": {"n_heads": 8}})
    x = images(1, 480)
    tokens = model.encoder(x)
    assert tokens.shape == (1, 225, 2048) and model.encoder.n_tokens(480) == 225
    assert model.soft_prompts(x).shape == (1, 10, 64)
    counts = model.count_parameters()
    assert counts["lora"] == 2 * (64 * 8 + 8 * 64) * 2  # q and v, 2 layers
    assert counts["trainable"] == counts["total"] - counts["lm_base"] == counts["vision"] + counts["mapper"] + counts["lora"]
    assert not any(p.requires_grad for n, p in model.lm.named_parameters() if "lora_" not in n)
    greedy = model.generate(x, max_new_tokens=3, output_scores=True, output_attentions=True)
    beams = model.generate(x, max_new_tokens=3, num_beams=2, output_scores=True, output_attentions=True)  # peft + HF beams
    for out in (greedy, beams):
        assert 1 <= len(out.token_ids[0]) <= 3 and out.prompt_attention[0].shape == (len(out.token_ids[0]), 2)
    assert model.lm.get_base_model().config._attn_implementation != "eager"  # switched back after generation


@pytest.mark.slow
def test_smollm2_builds_with_lora_on_q_and_v():
    torch.manual_seed(0)
    model = build_model({"encoder": {"name": "resnet-tiny"}})
    counts = model.count_parameters()
    assert counts["lora"] == 30 * (576 * 8 + 8 * 576 + 576 * 8 + 8 * 192)  # 460,800; q 576→576, v 576→192
    assert counts["lm_base"] == 134_515_008
    out = model.generate(images(1), max_new_tokens=4, output_scores=True, output_attentions=True)
    assert out.prompt_attention[0].shape[1] == 30 and len(out.token_probs[0]) == len(out.token_ids[0])
    beams = model.generate(images(2), max_new_tokens=4, num_beams=2, output_scores=True)
    assert len(beams.texts) == 2 and all(0 < p.min() and p.max() <= 1 for p in beams.token_probs)


# ----- report tokenizer ---------------------------------------------------------------------------
def test_scratch_gpt2_report_tokenizer_round_trips_and_is_small():
    """The scratch GPT-2s get the 2,048-token report BPE: exact round trip, and fewer tokens than SmolLM2's."""
    from rrgkit.models.report_tokenizer import VOCAB_SIZE

    report = load_tokenizer("gpt2-scratch-tiny")
    smol = load_tokenizer("smollm2-135m")
    assert len(report) == VOCAB_SIZE < len(smol)
    text = " Moderate cardiomegaly; small right pleural effusion. Left PICC tip in the SVC — unchanged (2012)."
    ids = report(text, add_special_tokens=False)["input_ids"]
    assert report.decode(ids) == text
    assert report.eos_token_id == report.pad_token_id and report.eos_token_id not in ids
    common = " The heart size is normal. There is no pleural effusion or pneumothorax. The lungs are clear."
    assert len(report(common, add_special_tokens=False)["input_ids"]) <= len(smol(common, add_special_tokens=False)["input_ids"])
    assert build_model(TINY).lm.get_input_embeddings().weight.shape[0] == VOCAB_SIZE


@pytest.mark.slow
def test_report_tokenizer_training_is_deterministic(tmp_path, monkeypatch):
    """Trained again from scratch in another folder, the vocabulary and merges are identical."""
    from rrgkit.models.report_tokenizer import report_tokenizer_folder

    first = (report_tokenizer_folder() / "tokenizer.json").read_text()
    monkeypatch.setenv("RRGKIT_MODELS", str(tmp_path))
    again = report_tokenizer_folder()
    assert again.parent == tmp_path
    assert (again / "tokenizer.json").read_text() == first
