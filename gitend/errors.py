class GitendError(Exception):
    """An expected failure: the message is one line that says what to do."""
