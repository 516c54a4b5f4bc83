"""PersAI's benchmarks: one command each, `uv run python bench/NAME.py [--quick]` (README.md)."""
