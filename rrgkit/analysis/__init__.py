"""The paper's analyses of a trained model: attention to the visual prompt (Eq. 2), soft-prompt similarity (Eq. 3), report confidence (Eq. 4)."""
