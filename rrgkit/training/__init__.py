"""Training: one core for every loop, fine-tuning schedules as phases, pretraining, generation.

:mod:`rrgkit.training.engine` is the core (shuffling and length buckets, warm-up + cosine,
clipping, precision, checkpoints and exact resume, several processes); fine-tuning
(:mod:`rrgkit.training.finetune`), the three pretrainings (:mod:`rrgkit.training.pretrain`) and the
data chapter's image probe are tasks it runs. A config is parsed once into a typed
:class:`rrgkit.training.config.TrainConfig`; its schedule is a list of phases
(:mod:`rrgkit.training.schedule`). ``rrgkit train --config configs/smoke.yaml`` runs
:func:`rrgkit.training.finetune.train`.
"""
