"""The RRG model: vision encoder → mapping network → causal LM with LoRA (Lu et al., Section 3)."""

from rrgkit.models.config import ModelConfig, ModelConfigError, parse_model_config
from rrgkit.models.rrg import Generation, RRGModel, build_model

__all__ = ["Generation", "ModelConfig", "ModelConfigError", "RRGModel", "build_model", "parse_model_config"]
