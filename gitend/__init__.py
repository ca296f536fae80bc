"""gitend: save uncommitted work when a Claude Code session ends."""

__version__ = "0.1.0"
