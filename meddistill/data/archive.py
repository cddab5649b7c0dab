"""Safe extraction of user-uploaded zip archives.

Every member of the central directory is checked before a single byte is
written: no absolute paths, drive letters, ``..`` components, backslashes,
symlinks, duplicate names, nested archives, password protection, too many
members, too many declared bytes or a suspicious compression ratio (zip bomb).
Extraction then streams each member into a ``.partial-*`` folder next to the
target while counting the bytes actually written, so a header that lies about
its size is still stopped by the caps. Only when everything succeeded is the
folder renamed into place; on any failure it is removed.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from meddistill.data.dataset import split_named
from meddistill.errors import DataError

MAX_MEMBERS = 250_000
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_RATIO = 200
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")

# Members (and archives) smaller than this are never refused for their ratio:
# a few KiB of blank text can compress 500:1 and is harmless.
_RATIO_FLOOR = 1024 * 1024
_CHUNK = 1024 * 1024
_JUNK_DIRS = frozenset({"__MACOSX"})
# Files that may stand beside a wrapping folder without making it part of the data: notes, licences, file lists.
NOTE_SUFFIXES = frozenset({".txt", ".md", ".rst", ".pdf", ".html", ".htm", ".json", ".yaml", ".yml", ""})
_JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
# What zipfile and the decompressors raise on damaged input (bz2 raises OSError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]


def _show(name: str) -> str:
    """Return a member name made safe and short enough for a message."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in name)
    return clean if len(clean) <= 120 else clean[:117] + "..."


def _is_junk(parts: tuple[str, ...]) -> bool:
    base = parts[-1]
    return any(p in _JUNK_DIRS for p in parts) or base in _JUNK_FILES or base.startswith("._")


def _check_name(info: zipfile.ZipInfo, archive: str) -> tuple[str, ...]:
    """Return the safe path components of a member or raise DataError."""
    raw = info.orig_filename
    shown = _show(raw)

    def refuse(problem: str, fix: str) -> DataError:
        return DataError(f'Archive "{archive}" member "{shown}" {problem}; {fix}.')

    rebuild = "re-create the archive from inside the dataset folder with a standard zip tool"
    if "\x00" in raw:
        raise refuse("contains a null byte in its name", rebuild)
    if "\\" in raw:
        raise refuse("uses backslashes in its path", rebuild)
    if raw.startswith("/") or _DRIVE.match(raw):
        raise refuse("has an absolute path", rebuild)
    parts = tuple(p for p in raw.split("/") if p not in ("", "."))
    if ".." in parts:
        raise refuse("points outside the archive folder with '..'", rebuild)
    if not parts and not info.is_dir():
        raise refuse("has an empty name", rebuild)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise refuse("is a symbolic link, which is not allowed", "zip the real files instead")
    if info.flag_bits & 0x1:
        raise refuse("is password-protected", "upload an archive without a password")
    return parts


def _plan(zf: zipfile.ZipFile, archive: str, max_members: int, max_total_bytes: int, max_ratio: float) -> list[_Member]:
    """Validate the whole central directory and return the files to write."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise DataError(
            f'Archive "{archive}" has {len(infos)} entries, more than the limit of '
            f"{max_members}; split the dataset into smaller archives."
        )
    plan: list[_Member] = []
    seen: set[str] = set()
    dirs: set[str] = set()
    total = compressed = 0
    for info in infos:
        parts = _check_name(info, archive)
        if info.is_dir() or not parts or _is_junk(parts):
            continue
        shown = _show(info.orig_filename)
        if parts[-1].lower().endswith(ARCHIVE_SUFFIXES) and not parts[-1].lower().endswith(".nii.gz"):  # NIfTI
            raise DataError(
                f'Archive "{archive}" contains another archive "{shown}"; unpack it and zip the files directly.'
            )
        if info.compress_type not in _SUPPORTED_METHODS:
            raise DataError(
                f'Archive "{archive}" member "{shown}" uses an unsupported compression '
                "method; re-create the archive with standard (deflate) compression."
            )
        key = "/".join(parts).casefold()
        if key in seen or key in dirs:
            raise DataError(
                f'Archive "{archive}" contains "{shown}" more than once (names differing '
                "only in case count as the same); rename the duplicates and zip again."
            )
        seen.add(key)
        dirs.update("/".join(parts[:i]).casefold() for i in range(1, len(parts)))
        if info.file_size > _RATIO_FLOOR and (
            info.compress_size <= 0 or info.file_size / info.compress_size > max_ratio
        ):
            raise DataError(
                f'Archive "{archive}" member "{shown}" expands more than {max_ratio} times '
                "its compressed size, which looks like a zip bomb; upload the files "
                "without such extreme compression."
            )
        total += info.file_size
        compressed += info.compress_size
        plan.append(_Member(info, parts))
    if seen & dirs:
        raise DataError(
            f'Archive "{archive}" uses the same name for a file and a folder; rename one of them and zip again.'
        )
    if total > max_total_bytes:
        raise DataError(
            f'Archive "{archive}" would expand to {total} bytes, more than the limit of '
            f"{max_total_bytes}; upload a smaller dataset."
        )
    if total > _RATIO_FLOOR and (compressed <= 0 or total / compressed > max_ratio):
        raise DataError(
            f'Archive "{archive}" expands more than {max_ratio} times its compressed '
            "size, which looks like a zip bomb; upload the files without such extreme "
            "compression."
        )
    return plan


def _write(zf: zipfile.ZipFile, member: _Member, root: Path, archive: str, budget: int) -> int:
    """Stream one member under ``root``; return the bytes written."""
    dest = root.joinpath(*member.parts)
    if not dest.resolve().is_relative_to(root.resolve()):
        raise DataError(
            f'Archive "{archive}" member "{_show(member.info.orig_filename)}" points '
            "outside the archive folder; re-create the archive with a standard zip tool."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(member.info) as src, open(dest, "xb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > member.info.file_size or written > budget:
                raise DataError(
                    f'Archive "{archive}" member "{_show(member.info.orig_filename)}" '
                    "holds more data than its header declares or than the size limit "
                    "allows; the archive is damaged or malicious, re-create it."
                )
            dst.write(chunk)
    return written


def safe_extract_zip(
    zip_path: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    *,
    max_members: int = MAX_MEMBERS,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_ratio: float = MAX_RATIO,
) -> Path:
    """Extract a zip archive into ``target_dir`` safely and atomically.

    Args:
        zip_path: The uploaded ``.zip`` file.
        target_dir: Folder to create with the archive's contents. If it already
            exists it is returned unchanged (content-addressed storage).
        max_members: Most entries the central directory may list.
        max_total_bytes: Most bytes the archive may expand to, declared or real.
        max_ratio: Highest uncompressed/compressed ratio allowed per member and
            overall (checked for members and archives above 1 MiB).

    Returns:
        ``target_dir`` as a ``Path``.

    Raises:
        DataError: The archive is unreadable, unsafe or over a limit. Nothing is
            left behind in that case.
    """
    zip_path, target_dir = Path(zip_path), Path(target_dir)
    archive = zip_path.name
    if target_dir.exists():
        return target_dir
    try:
        zf = zipfile.ZipFile(zip_path)
    except FileNotFoundError as exc:
        raise DataError(f'Archive "{archive}" does not exist; upload it again.') from exc
    except _ZIP_ERRORS as exc:
        raise DataError(
            f'"{archive}" is not a readable zip archive; check that it is a complete .zip file and upload it again.'
        ) from exc
    with zf:
        try:
            plan = _plan(zf, archive, max_members, max_total_bytes, max_ratio)
        except DataError:
            raise
        except _ZIP_ERRORS as exc:
            raise DataError(
                f'"{archive}" is not a readable zip archive; check that it is a complete .zip file and upload it again.'
            ) from exc
        return _extract(zf, plan, archive, target_dir, max_total_bytes)


def _extract(zf: zipfile.ZipFile, plan: list[_Member], archive: str, target_dir: Path, max_total_bytes: int) -> Path:
    try:
        target_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target_dir.parent, prefix=".partial-"))
    except OSError as exc:
        raise DataError(
            f'Cannot create a folder next to "{target_dir}" to unpack "{archive}" '
            f"({exc.strerror or exc}); check the disk and its permissions."
        ) from exc
    try:
        written = 0
        for member in plan:
            written += _write(zf, member, tmp, archive, max_total_bytes - written)
        try:
            os.replace(tmp, target_dir)
        except OSError:
            if not target_dir.is_dir():  # not a concurrent extraction: a real failure
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        return target_dir
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, DataError) or not isinstance(exc, _ZIP_ERRORS):
            raise
        if isinstance(exc, OSError) and exc.errno is not None:
            raise DataError(
                f'Unpacking "{archive}" failed while writing ({exc.strerror or exc}); '
                "check free disk space and permissions, then try again."
            ) from exc
        raise DataError(
            f'"{archive}" is damaged and could not be unpacked completely; upload a fresh copy of the archive.'
        ) from exc


def strip_single_top_folder(root: str | os.PathLike[str]) -> Path:
    """Return the only folder inside ``root`` if that is all it holds.

    Archives are often zipped with a wrapping folder (``mydata/train/...``).
    Junk such as ``__MACOSX`` or ``.DS_Store`` is ignored when counting.

    Args:
        root: An extracted archive folder.

    Returns:
        The single sub-folder when ``root`` contains exactly one folder and no
        files other than notes (``NOTE_SUFFIXES``: a README, SOURCE.txt or a licence, as
        downloads often carry beside their data) and itself holds folders (and it is not named like a split:
        ``Testing/`` alone is a split and ``NORMAL/*.png`` alone is one class, not
        wrappers), otherwise ``root`` itself.

    Raises:
        DataError: ``root`` cannot be listed.
    """
    root = Path(root)
    try:
        entries = [p for p in root.iterdir() if not _is_junk((p.name,))]
        folders = [p for p in entries if p.is_dir()]
        notes = [p for p in entries if p.is_file() and p.suffix.lower() in NOTE_SUFFIXES]
        only = folders[0] if len(folders) == 1 and len(folders) + len(notes) == len(entries) else None
        if only is not None and split_named(only.name) is None:
            if any(p.is_dir() and not _is_junk((p.name,)) for p in only.iterdir()):
                return only
    except OSError as exc:
        raise DataError(f'Folder "{root}" cannot be read ({exc.strerror or exc}); extract the archive again.') from exc
    return root
