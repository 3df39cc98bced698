"""Schedules and triggers: everything that creates runs without a person clicking Run."""
