"""Prefect tasks: thin wrappers that add names, retries and logging around emotrack's logic."""
