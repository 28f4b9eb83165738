"""Prefect tasks: thin wrappers that add names, logging and artifacts around emotrack's logic.

A run has a handful of task runs, whatever the number of videos: planning, one commit per
batch of videos, compaction, the report. The videos themselves are units of work on Dask
(emotrack.units), not Prefect tasks: Prefect's server would otherwise record a few task runs
per video, which does not scale to archives of tens of thousands.
"""
