"""One test study as a trained run sees it: image, reference, its report token by token with confidence and attention.

:class:`RunViewer` loads a run's best checkpoint once and writes any test study's report again
(greedy, as the run tested), recording for each generated token its probability (the term of
Eq. 4) and its attention allocation to the soft visual prompt (Eq. 2, averaged over layers). The
report browser (:mod:`rrgkit.book.report_browser`) shows these; nothing here displays anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rrgkit.analysis.prompt_attention import attention_allocation

END = "⟨end⟩"
"""How the end-of-report token is shown."""


@dataclass
class StudyView:
    """What a run wrote for one study, per token: the text piece, its probability and its allocation α (Eq. 2)."""

    study_id: str
    image_file: Path  # the study's frontal image, as the run reads it
    reference: str
    generated: str
    pieces: list[str]  # decoded tokens; the end-of-report token as END
    probs: np.ndarray  # (T,) p(y_t | C, y_<t)
    alpha: np.ndarray  # (T,) Eq. 2, mean over layers
    reference_labels: np.ndarray  # (14,) the manifest's
    generated_labels: np.ndarray  # (14,) the labeler's on ``generated``


class RunViewer:
    """A run's model and test split, to view studies one at a time (the model is loaded on creation)."""

    def __init__(self, run: str | Path) -> None:
        from rrgkit.data.loader import ManifestDataset
        from rrgkit.training.generation import load_run_model

        self.model, self.config = load_run_model(Path(run))
        data = self.config.data
        self.dataset = ManifestDataset(data.manifest_path, "test", data.image_size, views=data.views, augment=False,
                                       cache=False)
        self._index = {study: i for i, study in enumerate(self.dataset.frame["id"])}

    @property
    def study_ids(self) -> list[str]:
        """The test studies, in manifest order."""
        return list(self._index)

    def view(self, study_id: str) -> StudyView:
        """Generate ``study_id``'s report with per-token probabilities and attention to the soft prompt."""
        from rrgkit.evaluation.labeler import label_report

        if study_id not in self._index:
            raise KeyError(f"{study_id!r} is not a test study of {self.dataset.name}")
        index = self._index[study_id]
        item = self.dataset[index]
        out = self.model.generate(item["image"][None], max_new_tokens=self.config.eval.max_new_tokens, num_beams=1,
                                  output_scores=True, output_attentions=True)
        ids = out.token_ids[0]
        tokenizer, eos = self.model.tokenizer, self.model.eos_id
        pieces = [END if t == eos else tokenizer.decode([t]) for t in ids]
        table = attention_allocation(out.prompt_attention, out.context_lengths, n_prompt=out.soft_prompts.shape[1])
        alpha = table.groupby("step")["alpha"].mean().to_numpy() if len(table) else np.empty(0)
        return StudyView(study_id, self.dataset.image_files(index)[0], item["findings"], out.texts[0], pieces,
                         np.asarray(out.token_probs[0], dtype=float), alpha, item["labels"].numpy().astype(float),
                         label_report(out.texts[0]))
