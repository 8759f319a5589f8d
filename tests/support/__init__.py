"""Helpers shared by the workflow and cluster tests."""
