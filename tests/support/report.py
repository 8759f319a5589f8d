"""Read the files Snakemake embeds in a self-contained ``--report report.html``."""

from __future__ import annotations

import base64
import re

# Snakemake writes each report file as a data URI naming it: data:<mime>;charset=..;
# filename=<name>;base64,<payload>
_EMBEDDED = re.compile(r"data:[\w/+.-]+;charset=[\w-]+;filename=([^;\"']+);base64,"
                       r"([A-Za-z0-9+/=]+)")


def embedded_files(html: str) -> dict[str, bytes]:
    """File name -> decoded content of every file embedded in the report."""
    return {match.group(1): base64.b64decode(match.group(2))
            for match in _EMBEDDED.finditer(html)}
