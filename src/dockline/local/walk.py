"""The bucket walk: every matching entry below the bucket folder, never through a link.

Folders are opened one at a time with O_NOFOLLOW relative to their parent (the way
``FolderStore.open_regular`` reaches a file), so a folder swapped for a link is never
entered and nothing outside the bucket is listed. Only the folders on the current path
are open: a folder with a million subfolders costs no more descriptors than its depth.
A folder that cannot be listed, or whose key is already too long to hold a key, is
reported as one entry instead of being skipped or descended into.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import NamedTuple

from dockline.config import PipelineSettings
from dockline.local.names import MAX_KEY_BYTES
from dockline.routes import RouteTable

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Found(NamedTuple):
    key: str  # as read from the disk: undecodable bytes are lone surrogates
    st: os.stat_result
    refused: tuple[str, ...] = ()  # a folder reported whole (key ends with '/'), and why
    folder: int = -1  # the walk's descriptor of the folder holding it, valid until the next entry
    name: str = ""


def walk(root: Path, pipeline: PipelineSettings, ignored: list[str] | None = None) -> Iterator[Found]:
    """Matching entries below ``root``, one at a time (see ``walk_folders``)."""
    for batch in walk_folders(root, pipeline, ignored):
        yield from batch


def walk_folders(root: Path, pipeline: PipelineSettings, ignored: list[str] | None = None) -> Iterator[list[Found]]:
    """Matching entries below ``root``, a folder's files at a time (each ``folder``
    descriptor is valid until the next batch), then its subfolders by name.

    Dot names are skipped (rsync's and editors' temporary files, and ``put``'s). The keys
    of files no route takes, in the folders the walk lists anyway (those on the way to a
    route's prefix and below it, and folders that differ from those only in case), are
    added to ``ignored``: nothing more is listed, stat'ed or read for them.
    """
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except PermissionError:
        yield [Found("./", root.stat(), refused=("denied",))]
        return
    rel = ""
    # Straight to the folder all routes' prefixes share (the prefix's folder, with one route),
    # unless ignored keys are wanted: then from the top, where a file dropped beside the
    # prefix folder, or into one spelled in another case, can be seen.
    shared = os.path.commonprefix(list(pipeline.table.prefixes))  # noqa: RUF071 -- by character: the cut below drops a part-folder
    for part in shared.split("/")[:-1] if ignored is None else ():
        try:
            inner = os.open(part, _FOLDER, dir_fd=fd)
        except PermissionError:
            found = _folder(f"{rel}{part}/", part, fd, "denied")
            os.close(fd)
            if found is not None:
                yield [found]
            return
        except OSError:  # missing, a link or a file: nothing to scan
            os.close(fd)
            return
        os.close(fd)
        fd, rel = inner, f"{rel}{part}/"
    yield from _walk_from(fd, rel, pipeline, ignored)


def _walk_from(top: int, top_rel: str, pipeline: PipelineSettings, ignored: list[str] | None) -> Iterator[list[Found]]:
    """Depth first; the stack holds each open folder and the subfolder names left in it."""
    stack: list[tuple[int, str, Iterator[str]]] = [(top, top_rel, iter(()))]
    try:
        subfolders = yield from _walk_folder(top, top_rel, pipeline, ignored)
        stack[0] = (top, top_rel, iter(subfolders))
        while stack:
            fd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            key = f"{rel}{name}/"
            if len(key.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
                found = _folder(key, name, fd, "long")  # every key below would be refused too
                if found is not None:
                    yield [found]
                continue
            try:
                inner = os.open(name, _FOLDER, dir_fd=fd)
            except PermissionError:
                found = _folder(key, name, fd, "denied")
                if found is not None:
                    yield [found]
                continue
            except OSError:
                continue  # gone, or swapped for a link: never entered
            try:
                subfolders = yield from _walk_folder(inner, key, pipeline, ignored)
            except BaseException:
                os.close(inner)
                raise
            stack.append((inner, key, iter(subfolders)))
    finally:
        for fd, _rel, _names in stack:
            os.close(fd)


def _walk_folder(
    fd: int, rel: str, pipeline: PipelineSettings, ignored: list[str] | None
) -> Generator[list[Found], None, list[str]]:
    """Yield this folder's matching files (one list: a generator step per file costs more
    than the rest of a known file's check); return the names of its subfolders worth entering."""
    subfolders: list[str] = []
    try:
        os.stat(".", dir_fd=fd)  # needs search permission: without it nothing below can be read
        # In the disk's order: the scan sorts what it returns, so sorting every name (most
        # of them known and skipped) would cost per file for nothing.
        entries = list(os.scandir(fd))
    except PermissionError:
        yield [Found(rel or "./", os.fstat(fd), refused=("denied",))]
        return subfolders
    except OSError:
        return subfolders  # removed meanwhile
    table = pipeline.table
    matches = _matcher(table)
    files: list[Found] = []
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        key = rel + name
        try:
            if entry.is_dir(follow_symlinks=False):
                folder_key = f"{key}/"
                # Can keys below it match the prefix (or, for the ignored list, nearly)?
                if table.could_hold(folder_key) or (ignored is not None and table.could_hold_any_case(folder_key)):
                    subfolders.append(name)
            elif matches(key):
                files.append(Found(key, entry.stat(follow_symlinks=False), folder=fd, name=name))
            elif ignored is not None:
                ignored.append(key)
        except FileNotFoundError:
            continue
    if files:
        yield files
    subfolders.sort()  # folders in name order, as before
    return subfolders


def _matcher(table: RouteTable) -> Callable[[str], bool]:
    """``table.matches`` with each route's prefix and suffixes worked out once per folder,
    not once per file (the same rule: a route takes a key by prefix and suffix)."""
    rules = [(route.prefix, route.all_suffixes()) for route in table.routes]
    if len(rules) == 1:
        prefix, suffixes = rules[0]
        return lambda key: key.startswith(prefix) and key.endswith(suffixes)
    return lambda key: any(key.startswith(prefix) and key.endswith(suffixes) for prefix, suffixes in rules)


def _folder(key: str, name: str, parent: int, problem: str) -> Found | None:
    try:
        return Found(key, os.stat(name, dir_fd=parent, follow_symlinks=False), refused=(problem,))
    except OSError:
        return None
