"""Training: one loop for every fine-tuning schedule, checkpoints and resume, pretraining.

``rrgkit train --config configs/smoke.yaml`` runs :func:`rrgkit.training.loop.train`;
the schedule (frozen, one-stage, two-stage, long-stage, curriculum) is data in the
config, resolved by :mod:`rrgkit.training.schedule`.
"""
