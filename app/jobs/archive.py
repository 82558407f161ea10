"""A corpus uploaded as an archive (.tar.gz, .tar or .zip), unpacked safely into a folder that
`plan_ingest` reads: regular files only, no path outside the folder, within stated limits."""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.errors import Invalid
from app.settings import JobSettings

# What reading a truncated or corrupted archive raises (past its first header).
DAMAGED = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error)
# What an archive upload may be sent as.
ARCHIVE_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-tar", "application/zip"})


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    read: Callable[[], bytes]


def _tar_members(data: bytes) -> Iterator[Member]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (closed below)
    except tarfile.TarError as exc:
        raise Invalid(f"the upload is not a tar, tar.gz or zip archive: {exc}") from exc
    with archive:
        for info in archive:
            if info.isdir():
                continue
            if not info.isfile():
                raise Invalid(f"archive member {info.name!r} is not a regular file (links are refused)")

            def read(info: tarfile.TarInfo = info) -> bytes:
                extracted = archive.extractfile(info)
                assert extracted is not None
                return extracted.read()

            yield Member(info.name, info.size, read)


def _zip_members(data: bytes) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise Invalid(f"the upload is not a valid zip archive: {exc}") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if mode and (mode & 0o170000) not in (0, 0o100000):
                raise Invalid(f"archive member {info.filename!r} is not a regular file (links are refused)")

            def read_zipped(info: zipfile.ZipInfo = info) -> bytes:
                return archive.read(info)

            yield Member(info.filename, info.file_size, read_zipped)


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in name:
        raise Invalid(f"archive member {name!r} would land outside the corpus folder")
    return path


def unpack(data: bytes, into: Path, limits: JobSettings) -> Path:
    """Unpack the archive into the folder; the corpus root (the folder itself, or the single folder the
    archive holds); 422 naming the problem for anything but a safe, whole archive within the limits."""
    members = _zip_members(data) if data[:4] == b"PK\x03\x04" else _tar_members(data)
    try:
        files = _write(members, into, limits)
    except DAMAGED as exc:
        raise Invalid(f"the archive is damaged: {exc}") from exc
    if files == 0:
        raise Invalid("the archive holds no files")
    entries = [entry for entry in into.iterdir() if not entry.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return into


def _write(members: Iterator[Member], into: Path, limits: JobSettings) -> int:
    """Write the members below the folder; how many files."""
    files = 0
    unpacked = 0
    for member in members:
        relative = _safe_name(member.name)
        files += 1
        unpacked += member.size
        if files > limits.max_archive_files:
            raise Invalid(f"the archive holds more than {limits.max_archive_files} files")
        if unpacked > limits.max_unpacked_bytes:
            raise Invalid(f"the archive unpacks to more than {limits.max_unpacked_bytes} bytes")
        content = member.read()
        if len(content) != member.size:
            raise Invalid(f"archive member {member.name!r} is not the size its header states")
        target = into.joinpath(*relative.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
            raise Invalid(f"archive member {member.name!r} is both a file and a folder") from exc
    return files
