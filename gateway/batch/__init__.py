"""Batch checks (信用互查互认): the jobs (store and runner) and the statistics table."""
