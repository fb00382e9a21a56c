"""The one exception type raised for malformed or corrupt bitstreams."""


class BitstreamError(ValueError):
    """Bytes that are not a valid ``.nlc`` file (or a corrupt entropy-coded payload).

    The message is one line saying what is wrong (wrong magic, truncated section, checksum
    mismatch, ...); CLIs print it and exit non-zero.
    """
