"""Documents cut into passages as OpenSearch's ``text_chunking`` processor cuts them (its ``delimiter`` algorithm).

An index can hold, beside each document's vector, a nested vector per passage and score a document by its best
passage too. The evaluate stage scores that layout (``osft.trainer.passage_vectors``) on passages cut here exactly
as the processor would cut them in the cluster, so the figure is what such an index returns.
"""

from __future__ import annotations

PASSAGE_DELIMITER = "."
"""Sentences, roughly: the delimiter the OpenSearch documentation gives for splitting text into sentences."""
MAX_CHUNK_LIMIT = 100
"""The processor's default ``max_chunk_limit``."""


JAVA_TRIMMED = "".join(map(chr, range(0x21)))
"""What Java's ``String.trim`` (OpenSearch's ``trim`` ingest processor) removes from both ends: U+0000 to U+0020."""


def document_passages(text: str, delimiter: str = PASSAGE_DELIMITER) -> list[str]:
    """A document's passages as the register stage's ingest pipeline cuts them: trimmed, then cut on ``delimiter``.

    The trim matters: after a text's last delimiter a run of spaces would be a blank last passage, and
    ``text_embedding`` refuses a document with a blank passage.
    """
    return delimiter_chunks(text.strip(JAVA_TRIMMED), delimiter)


def delimiter_chunks(
    text: str, delimiter: str = PASSAGE_DELIMITER, max_chunk_limit: int = MAX_CHUNK_LIMIT
) -> list[str]:
    """The processor's passages: each ends with its delimiter, kept; the text after the last one is a passage too.

    Past ``max_chunk_limit`` passages (``-1``: no limit) the rest of the text stays whole in the last one, as the
    processor does with a single field. Nothing is stripped: ``"p < 0.05"`` splits after ``"0."`` in the cluster
    as well.
    """
    if not delimiter:
        raise ValueError("the delimiter must not be empty")
    chunks: list[str] = []
    start = 0
    position = text.find(delimiter)
    while position != -1 and (max_chunk_limit < 0 or len(chunks) + 1 < max_chunk_limit):
        end = position + len(delimiter)
        chunks.append(text[start:end])
        start = end
        position = text.find(delimiter, start)
    if start < len(text):
        chunks.append(text[start:])
    return chunks
