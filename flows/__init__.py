"""Prefect flows: the order of the steps, nothing else."""
