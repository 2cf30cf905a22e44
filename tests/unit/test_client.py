"""The Python client's pieces that need no server."""

from __future__ import annotations

import os
from pathlib import Path

from anvil_dev.client import Media

MB = 1 << 20
BLOCK = bytes(range(256)) * 4096  # 1 MiB with every byte value


def test_client_streams_uploads(tmp_path: Path) -> None:
    """The client's multipart body reads media from their files piece by piece."""
    from anvil_dev.client import _MultipartBody

    path = tmp_path / "f.bin"
    path.write_bytes((BLOCK * 4)[: 3 * MB + 5])
    body = _MultipartBody(
        [
            ("json", None, "application/json", b"{}"),
            ("media0", 'we"ird.bin', "application/octet-stream", Media.from_file(str(path))),
        ]
    )
    chunks = iter(lambda: body.read(16384), b"")
    data = b"".join(chunks)
    assert len(data) == len(body)
    assert data.count(BLOCK) == 3 and b'filename="we%22ird.bin"' in data
    assert os.path.getsize(path) == 3 * MB + 5
