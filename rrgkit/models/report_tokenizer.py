"""A small byte-level BPE vocabulary for the from-scratch GPT-2s, trained once on report text.

A from-scratch LM has no pretrained vocabulary to keep, and on a CPU the vocabulary is what it
pays for: with SmolLM2's 49,152 tokens the output projection of a 4-layer, 256-wide GPT-2 costs
more than its four transformer blocks together. Reports use a few thousand distinct words, so a
vocabulary of :data:`VOCAB_SIZE` byte-level BPE tokens (GPT-2's scheme: any text encodes, no
unknown token, decoding gives the text back byte for byte) learned from report text covers them in
about as many tokens per report, at a fraction of the cost.

The corpus is fixed and offline: the real IU X-ray findings and impressions from the
torchxrayvision wheel plus :data:`N_PHANTOM` phantom reports written from studies drawn with a
seed of their own (:data:`PHANTOM_SEED`, used by no dataset build), so the vocabulary never
depends on which dataset a run trains on. It is trained ONCE into ``<models_root>/report-bpe-<V>/``
under a file lock and an atomic rename (as the SmolLM2 conversion), then loaded from there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerFast

from rrgkit.models.store import made_once

VOCAB_SIZE = 2048
N_PHANTOM = 4000
PHANTOM_SEED = 424242
EOS = "<|endoftext|>"


def report_corpus() -> list[str]:
    """IU findings + impressions and phantom findings + impressions, deduplicated, in a fixed order."""
    from rrgkit.data.iu_xray import load_iu_reports
    from rrgkit.data.report_writer import write_report
    from rrgkit.data.sampling import sample_studies

    iu = load_iu_reports()
    texts = [t for column in ("findings", "impression") for t in iu[column].tolist()]
    rng = np.random.default_rng(PHANTOM_SEED)
    for study in sample_studies(N_PHANTOM, seed=PHANTOM_SEED, prefix="tokenizer"):
        report = write_report(study, rng)
        texts += [report["findings"], report["impression"]]
    return sorted({t.strip() for t in texts if isinstance(t, str) and t.strip()})


def _train(folder: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = report_corpus()
    print(f"training a {vocab_size}-token byte-level BPE on {len(corpus)} report texts (once)")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(corpus, trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, pad_token=EOS).save_pretrained(folder)


def report_tokenizer_folder(vocab_size: int = VOCAB_SIZE) -> Path:
    """The trained report tokenizer's folder, training it the first time (locked, atomic)."""
    return made_once(f"report-bpe-{vocab_size}", "tokenizer.json", lambda folder: _train(folder, vocab_size))


def load_report_tokenizer(vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """The report BPE tokenizer (EOS doubles as BOS and pad; padding is masked)."""
    return PreTrainedTokenizerFast.from_pretrained(report_tokenizer_folder(vocab_size))
