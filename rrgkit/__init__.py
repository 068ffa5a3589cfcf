"""rrgkit: reproduce and extend LMM fine-tuning for radiology report generation."""

__version__ = "0.1.0"
