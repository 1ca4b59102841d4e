"""Integrations with web and task frameworks; each module imports its framework, nothing else does."""
