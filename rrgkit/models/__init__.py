"""The RRG model: vision encoder → mapping network → causal LM with LoRA (Lu et al., Section 3).

:mod:`rrgkit.models.config` (the ``model:`` section, no heavy imports) and :mod:`rrgkit.models.rrg`
(the composed model, which imports transformers and peft) are imported from their modules, so
reading a config never loads a language-model library.
"""
