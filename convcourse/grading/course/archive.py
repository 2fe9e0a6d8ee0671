"""The student notebooks as one zip to publish: ``convcourse-notebooks-<version>.zip``, built from release/.

``python -m convcourse.grading archive`` (``make student-archive``) checks that release/ is current,
then writes every file of release/ under one top folder, so that unzipping on any system gives
``convcourse-notebooks-<version>/<assignment>/<assignment>.ipynb``. The same release/ always gives
the same bytes (sorted entries, fixed dates and permissions).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

from convcourse import __version__
from convcourse.grading.course.release import ReleaseError

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can store: no build time in the bytes
_SKIPPED_PARTS = {".ipynb_checkpoints", "__pycache__"}


def archive_name(version: str = __version__) -> str:
    """The archive's file name without ``.zip``, also its top folder."""
    return f"convcourse-notebooks-{version}"


def release_files(root: Path) -> list[Path]:
    """Every file under ``root``/release/, sorted, without Jupyter's checkpoints or caches."""
    release = Path(root) / "release"
    return sorted(p for p in release.rglob("*")
                  if p.is_file() and not _SKIPPED_PARTS & set(p.relative_to(release).parts))


def build(root: Path, out_dir: Path, version: str = __version__) -> Path:
    """Write ``out_dir``/convcourse-notebooks-<version>.zip from release/; return its path."""
    files = release_files(root)
    if not files:
        raise ReleaseError(f"nothing to archive: {Path(root) / 'release'} holds no files; run `make release` first")
    top, release = archive_name(version), Path(root) / "release"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{top}.zip"
    partial = path.with_name(path.name + ".partial")  # a crash never leaves a half-written archive under the real name
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            entry = zipfile.ZipInfo(f"{top}/{file.relative_to(release).as_posix()}", ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16  # rw-r--r-- whatever the umask of the machine that built it
            archive.writestr(entry, file.read_bytes())
    os.replace(partial, path)
    return path
