"""service-info `storage` offers exactly the schemes CreateTask accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tesk.app import advertised_storage, filer_url_check
from tesk.config import FilerConfig


def test_every_advertised_scheme_is_accepted_and_ftps_is_advertised(tmp_path: Path) -> None:
    filer = FilerConfig(file_roots=[tmp_path], s3=True, ftp=True, http=True)
    check = filer_url_check(filer)

    storage = advertised_storage(filer)

    assert "ftps://" in storage
    for location in storage:
        url = f"{location}host/file.txt" if location.endswith("://") else f"{location}/file.txt"
        check(url, False)


def test_a_disabled_scheme_is_neither_advertised_nor_accepted() -> None:
    filer = FilerConfig(s3=True, ftp=False, http=False)
    check = filer_url_check(filer)

    assert advertised_storage(filer) == ["s3://"]
    for url in ("ftp://host/file", "ftps://host/file", "http://host/file"):
        with pytest.raises(ValueError, match=r"disabled|supported"):
            check(url, False)
