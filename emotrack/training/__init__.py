"""Training and evaluating models: labelled video (Aff-Wild2's layout), simulated tracks, the
metrics, and the no-harm checks. Above the networks they train (models/) and the analysis
they read features from (emotrack.analysis); nothing in a run's path imports it."""
