"""Report evaluation: the CheXpert labeler, NLG and clinical-efficacy metrics, bootstrap statistics."""
