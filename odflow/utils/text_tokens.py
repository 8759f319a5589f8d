"""Walk the tokens of a protobuf text-format file with their nesting depth.

Two things need the raw token stream rather than a parsed message: finding which model
a config holds when its body is unknown to our protos (Faster R-CNN), and pointing label
map errors at the line of the offending ``item``.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import text_format


def tokens_with_depth(text: str) -> Iterator[tuple[str, int, int]]:
    """Yield ``(token, depth, line)`` (line 1-based); depth counts the open ``{``/``<``.

    Stops quietly at the first token the tokenizer cannot read: callers use this for
    diagnostics on text that may not parse.
    """
    tokenizer = text_format.Tokenizer(text.splitlines())
    depth = 0
    try:
        while not tokenizer.AtEnd():
            token = tokenizer.token
            if token in ("{", "<"):
                depth += 1
            elif token in ("}", ">"):
                depth -= 1
            yield token, depth, tokenizer._line + 1
            tokenizer.NextToken()
    except text_format.ParseError:
        return
