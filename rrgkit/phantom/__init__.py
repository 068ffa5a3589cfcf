"""Procedural chest radiograph phantoms: a study state (labels, finding details, patient) rendered to pixels."""
