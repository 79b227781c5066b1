"""Parsers for mesh files that cannot crash the interpreter, hang, or allocate from a declared count.

VTK's C++ readers trust the file: a flipped byte in a binary PLY or a wrong
count in a legacy VTK file can abort or segfault the interpreter (VTK's PLY
reader asserts on a short file, f3d-app/f3d#618; VTK filters index out of
bounds with bad connectivity, SCIInstitute/ShapeWorks#2048), and meshio does
not read legacy ``POLYDATA`` at all. The formats that :func:`skshapes.read`
is documented for are therefore parsed here, in numpy and the standard
library only (``xml.etree`` for VTK XML, ``zlib``/``lzma`` for compressed
arrays):

- every count read from a file is checked against the bytes that are left
  before anything is allocated from it;
- every loop is bounded by the size of the file;
- every malformation raises :class:`FileFormatError` (a :class:`ValueError`)
  whose message says where and what.

The parsers return a :class:`RawMesh` of arrays; connectivity is checked
against the number of points later, by :mod:`skshapes.shapes.io`, before any
VTK filter sees it.
"""

from __future__ import annotations

import base64
import binascii
import lzma
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field

import numpy as np

#: Longest numeric token accepted in ASCII data (longer ones are garbage, and
#: would make a fixed-width byte-string array of absurd size).
MAX_TOKEN = 128
#: Longest header or keyword line.
MAX_LINE = 1 << 16
#: Largest polygon triangulated (VTK's ear cutting is quadratic in the number of vertices).
MAX_POLYGON_VERTICES = 1024
#: Largest PLY header.
MAX_PLY_HEADER = 1 << 20
#: Upper bound on the compression ratio of zlib blocks (zlib's own maximum is 1032:1); LZ4's is 255:1,
#: LZMA's has no useful bound (10**6 is used).
MAX_COMPRESSION_RATIO = 1100


class FileFormatError(ValueError):
    """A file that does not follow its format; the message says where and what."""


@dataclass
class RawMesh:
    """Arrays read from a file, before validation against each other.

    Cells are VTK-style ``(offsets, connectivity)`` pairs: cell ``i`` is
    ``connectivity[offsets[i]:offsets[i + 1]]``, ``offsets`` starts at 0 and
    ends at ``len(connectivity)``.
    """

    points: np.ndarray
    polys: tuple | None = None
    lines: tuple | None = None
    strips: tuple | None = None
    point_data: dict = field(default_factory=dict)
    landmarks: np.ndarray | None = None


# --------------------------------------------------------------------------- helpers
def _int(word, what: str, low: int = 0, high: int = 2**62) -> int:
    """An integer token in ``[low, high]`` (the default bound keeps products of counts in int64)."""
    if isinstance(word, (str, bytes)) and len(word) > MAX_TOKEN:
        raise FileFormatError(f"{what}: expected an integer, got {_show(word)}")
    try:
        value = int(word)
    except (TypeError, ValueError):
        raise FileFormatError(f"{what}: expected an integer, got {_show(word)}") from None
    if not low <= value <= high:
        raise FileFormatError(f"{what}: expected an integer in [{low}, {high}], got {_show(str(value))}")
    return value


def _show(word) -> str:
    """A short printable version of a token for error messages."""
    if isinstance(word, bytes):
        word = word.decode("ascii", errors="replace")
    word = str(word)
    return repr(word if len(word) <= 40 else word[:40] + "...")


def _parse_tokens(tokens: list, kind: str, what: str) -> np.ndarray:
    """Numbers from a list of byte tokens: float64 for ``kind="f"``, int64 for ``"i"``."""
    if not tokens:
        return np.zeros(0, dtype=np.float64 if kind == "f" else np.int64)
    if max(map(len, tokens)) > MAX_TOKEN:
        raise FileFormatError(f"{what}: a value is longer than {MAX_TOKEN} characters")
    try:
        return np.array(tokens, dtype=bytes).astype(np.float64 if kind == "f" else np.int64)
    except (ValueError, OverflowError) as error:
        raise FileFormatError(f"{what}: invalid {'number' if kind == 'f' else 'integer'} ({error})") from None


def _cells_from_counts(flat: np.ndarray, n_cells: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``[n0, ids..., n1, ids...]`` (legacy VTK cell arrays) to ``(offsets, connectivity)``."""
    size = len(flat)
    if n_cells == 0:
        if size:
            raise FileFormatError(f"{what}: 0 cells but {size} values")
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if size % n_cells == 0 and size // n_cells >= 1:  # fast path: every cell has the same size
        width = size // n_cells
        table = flat.reshape(n_cells, width)
        if bool((table[:, 0] == width - 1).all()):
            return np.arange(n_cells + 1, dtype=np.int64) * (width - 1), table[:, 1:].reshape(-1).astype(np.int64)
    counts = np.empty(n_cells, dtype=np.int64)
    position = 0
    for i in range(n_cells):  # bounded: n_cells <= size (every cell takes at least one value)
        if position >= size:
            raise FileFormatError(f"{what}: the values end at cell {i} of {n_cells}")
        count = int(flat[position])
        if count < 0 or position + 1 + count > size:
            raise FileFormatError(f"{what}: cell {i} declares {count} vertices, beyond the {size} values")
        counts[i] = count
        position += 1 + count
    if position != size:
        raise FileFormatError(f"{what}: {size - position} values left after the {n_cells} cells")
    starts = np.concatenate([[0], np.cumsum(counts + 1)[:-1]])
    keep = np.ones(size, dtype=bool)
    keep[starts] = False
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, flat[keep].astype(np.int64)


def _check_offsets(offsets: np.ndarray, n_connectivity: int, what: str) -> np.ndarray:
    offsets = offsets.astype(np.int64)
    if len(offsets) == 0 or offsets[0] != 0:
        raise FileFormatError(f"{what}: offsets must start at 0")
    if len(offsets) > 1 and bool((np.diff(offsets) < 0).any()):
        raise FileFormatError(f"{what}: offsets decrease")
    if offsets[-1] != n_connectivity:
        raise FileFormatError(f"{what}: offsets end at {int(offsets[-1])}, the connectivity has {n_connectivity} entries")
    return offsets


# --------------------------------------------------------------------------- a cursor over bytes
class _Cursor:
    """Reads lines and arrays (ASCII tokens or big/little-endian binary) from a byte string."""

    def __init__(self, data: bytes, position: int = 0):
        self.data = data
        self.position = position

    @property
    def left(self) -> int:
        return len(self.data) - self.position

    def raw_line(self) -> bytes | None:
        """The next line without its end, or None at the end of the file."""
        if self.position >= len(self.data):
            return None
        end = self.data.find(b"\n", self.position, self.position + MAX_LINE)
        if end < 0:
            if self.position + MAX_LINE < len(self.data):
                raise FileFormatError(f"a line longer than {MAX_LINE} bytes at byte {self.position}")
            end = len(self.data)
        line = self.data[self.position : end]
        self.position = end + 1
        return line.rstrip(b"\r")

    def line(self) -> str | None:
        """The next non-empty line, stripped and decoded (ASCII), or None at the end."""
        while True:  # each turn consumes at least one byte
            raw = self.raw_line()
            if raw is None:
                return None
            raw = raw.strip()
            if raw:
                try:
                    return raw.decode("ascii")
                except UnicodeDecodeError:
                    raise FileFormatError(f"non-ASCII bytes where a keyword line was expected: {_show(raw)}") from None

    def ascii_tokens(self, n: int, what: str) -> list:
        """The next ``n`` whitespace-separated tokens (which may span lines)."""
        if n == 0:
            return []
        if 2 * n - 1 > self.left:
            raise FileFormatError(f"{what}: {n} values declared, only {self.left} bytes left in the file")
        # a bounded window first; the whole rest of the file only if it is not enough
        for end in (min(len(self.data), self.position + 24 * n + 4096), len(self.data)):
            parts = self.data[self.position : end].split(None, n)
            if len(parts) > n or (len(parts) == n and end == len(self.data)):
                break
        if len(parts) < n:
            raise FileFormatError(f"{what}: {n} values declared, the file ends after {len(parts)}")
        if len(parts) > n:
            rest = parts[n]
            self.position = end - len(rest)
        else:
            self.position = end
        return parts[:n]

    def ascii_array(self, n: int, kind: str, what: str) -> np.ndarray:
        return _parse_tokens(self.ascii_tokens(n, what), kind, what)

    def binary_array(self, n: int, dtype: np.dtype, what: str) -> np.ndarray:
        nbytes = n * dtype.itemsize
        if nbytes > self.left:
            raise FileFormatError(f"{what}: {n} values ({nbytes} bytes) declared, only {self.left} bytes left in the file")
        array = np.frombuffer(self.data, dtype=dtype, count=n, offset=self.position)
        self.position += nbytes
        return array.astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------- legacy VTK
_LEGACY_TYPES = {
    "bit": None,
    "unsigned_char": "u1",
    "char": "i1",
    "signed_char": "i1",
    "unsigned_short": "u2",
    "short": "i2",
    "unsigned_int": "u4",
    "int": "i4",
    "unsigned_long": "u8",
    "long": "i8",
    "unsigned_long_long": "u8",
    "long_long": "i8",
    "float": "f4",
    "double": "f8",
    "vtkidtype": "i4",
    "vtktypeint8": "i1",
    "vtktypeuint8": "u1",
    "vtktypeint16": "i2",
    "vtktypeuint16": "u2",
    "vtktypeint32": "i4",
    "vtktypeuint32": "u4",
    "vtktypeint64": "i8",
    "vtktypeuint64": "u8",
    "vtktypefloat32": "f4",
    "vtktypefloat64": "f8",
}
_LEGACY_CELL_KEYWORDS = {"VERTICES": "verts", "LINES": "lines", "POLYGONS": "polys", "TRIANGLE_STRIPS": "strips"}
_LEGACY_ATTRIBUTES = {"SCALARS", "COLOR_SCALARS", "LOOKUP_TABLE", "VECTORS", "NORMALS", "TEXTURE_COORDINATES",
                      "TENSORS", "TENSORS6", "FIELD", "GLOBAL_IDS", "PEDIGREE_IDS", "EDGE_FLAGS"}
_UNSTRUCTURED_SURFACE_TYPES = {1: "vertex", 2: "vertex", 3: "line", 4: "line", 5: "poly", 6: "strip", 7: "poly",
                               8: "pixel", 9: "poly"}


class _LegacyReader:
    def __init__(self, data: bytes):
        self.cursor = _Cursor(data)
        first = self.cursor.raw_line()
        if first is None or not first.strip().lower().startswith(b"# vtk datafile version"):
            raise FileFormatError("not a legacy VTK file: the first line must be '# vtk DataFile Version x.y'")
        version = first.strip()[len(b"# vtk DataFile Version") :].strip()
        try:
            self.version = float(version.split()[0]) if version else 0.0
        except ValueError:
            raise FileFormatError(f"unreadable version {_show(version)} on the first line") from None
        if self.cursor.raw_line() is None:  # the title, free text
            raise FileFormatError("the file ends after the first line")
        mode = self.cursor.line()
        if mode is None or mode.upper() not in ("ASCII", "BINARY"):
            raise FileFormatError(f"the third line must be ASCII or BINARY, got {_show(mode)}")
        self.binary = mode.upper() == "BINARY"

    def words(self, what: str, allow_end: bool = False) -> list[str] | None:
        line = self.cursor.line()
        if line is None:
            if allow_end:
                return None
            raise FileFormatError(f"the file ends before {what}")
        return line.split()

    def array(self, n: int, type_name: str, what: str) -> np.ndarray:
        code = _LEGACY_TYPES.get(type_name.lower())
        if code is None:
            raise FileFormatError(f"{what}: unsupported data type {_show(type_name)}")
        if self.binary:
            return self.cursor.binary_array(n, np.dtype(">" + code), what)
        return self.cursor.ascii_array(n, "f" if code[0] == "f" else "i", what)

    def skip_metadata(self) -> None:
        """A METADATA block runs to the next empty line."""
        while True:
            raw = self.cursor.raw_line()
            if raw is None or not raw.strip():
                return

    def skip_strings(self, count: int, what: str) -> None:
        """Skip ``count`` strings: one per line in ASCII, length-prefixed in binary (VTK's 1, 2, 4 or 8-byte lengths)."""
        cursor = self.cursor
        if count > cursor.left:
            raise FileFormatError(f"{what}: {count} strings declared, only {cursor.left} bytes left in the file")
        for _ in range(count):  # bounded: each string takes at least one byte
            if not self.binary:
                if cursor.raw_line() is None:
                    raise FileFormatError(f"{what}: the file ends before its {count} strings")
                continue
            if cursor.left < 1:
                raise FileFormatError(f"{what}: the file ends before its {count} strings")
            head = cursor.data[cursor.position]
            width = {3: 1, 2: 2, 1: 4, 0: 8}[head >> 6]
            if cursor.left < width:
                raise FileFormatError(f"{what}: the file ends in a string length")
            length = int.from_bytes(cursor.data[cursor.position : cursor.position + width], "big") & ((1 << (8 * width - 2)) - 1)
            cursor.position += width
            if length > cursor.left:
                raise FileFormatError(f"{what}: a string of {length} bytes, only {cursor.left} bytes left")
            cursor.position += length

    def cells_legacy(self, keyword: str, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(words) != 3:
            raise FileFormatError(f"{keyword} needs two counts, got {_show(' '.join(words))}")
        if self.version >= 5:
            n_offsets = _int(words[1], f"{keyword} offsets count")
            n_connectivity = _int(words[2], f"{keyword} connectivity count")
            arrays = {}
            for name, count in (("OFFSETS", n_offsets), ("CONNECTIVITY", n_connectivity)):
                header = self.words(f"the {name} of {keyword}")
                if header[0].upper() != name or len(header) != 2:
                    raise FileFormatError(f"{keyword}: expected '{name} <type>', got {_show(' '.join(header))}")
                arrays[name] = self.array(count, header[1], f"{keyword} {name.lower()}")
            if n_offsets == 0:
                return np.zeros(1, dtype=np.int64), arrays["CONNECTIVITY"].astype(np.int64)
            offsets = _check_offsets(arrays["OFFSETS"], n_connectivity, keyword)
            return offsets, arrays["CONNECTIVITY"].astype(np.int64)
        n_cells = _int(words[1], f"{keyword} cell count")
        size = _int(words[2], f"{keyword} size")
        if n_cells > size:
            raise FileFormatError(f"{keyword}: {n_cells} cells cannot fit in {size} values")
        flat = self.array(size, "int", keyword)
        return _cells_from_counts(flat, n_cells, keyword)

    def field(self, words: list[str], where: str) -> dict:
        if len(words) != 3:
            raise FileFormatError(f"FIELD needs a name and a count, got {_show(' '.join(words))}")
        n_arrays = _int(words[2], "FIELD array count")
        arrays = {}
        for _ in range(n_arrays):  # bounded: each array takes at least one line
            header = self.words(f"the arrays of FIELD {words[1]}")
            if header[0].upper() == "METADATA":
                self.skip_metadata()
                header = self.words(f"the arrays of FIELD {words[1]}")
            if header[0] == "NULL_ARRAY":
                continue
            if len(header) != 4:
                raise FileFormatError(f"field array header must be 'name components tuples type', got {_show(' '.join(header))}")
            name = header[0]
            n_components = _int(header[1], f"components of field array {name}", low=1)
            n_tuples = _int(header[2], f"tuples of field array {name}")
            if header[3].lower() in ("string", "utf8_string"):
                self.skip_strings(n_components * n_tuples, f"string array {name!r}")  # no use for a shape
                continue
            if header[3].lower() == "variant":
                raise FileFormatError(f"field array {name!r} ({where}): variant arrays are not supported")
            values = self.array(n_components * n_tuples, header[3], f"field array {name!r}")
            arrays[name] = values.reshape(n_tuples, n_components) if n_components > 1 else values
        return arrays

    def attribute(self, words: list[str], n: int) -> tuple[str | None, np.ndarray | dict | None]:
        """One attribute of POINT_DATA or CELL_DATA with ``n`` tuples: (name, array), or a dict for FIELD."""
        keyword = words[0].upper()
        joined = " ".join(words)
        if keyword == "FIELD":
            return None, self.field(words, "point or cell data")
        if keyword == "SCALARS":
            if len(words) not in (3, 4):
                raise FileFormatError(f"expected 'SCALARS name type [components]', got {_show(joined)}")
            n_components = _int(words[3], "SCALARS components", low=1) if len(words) == 4 else 1
            table = self.words("the LOOKUP_TABLE of SCALARS")
            if table[0].upper() != "LOOKUP_TABLE":
                raise FileFormatError(f"SCALARS {words[1]}: expected 'LOOKUP_TABLE name', got {_show(' '.join(table))}")
            values = self.array(n * n_components, words[2], f"SCALARS {words[1]}")
            return words[1], values.reshape(n, n_components) if n_components > 1 else values
        if keyword == "COLOR_SCALARS":
            if len(words) != 3:
                raise FileFormatError(f"expected 'COLOR_SCALARS name components', got {_show(joined)}")
            n_components = _int(words[2], "COLOR_SCALARS components", low=1)
            values = self.array(n * n_components, "unsigned_char" if self.binary else "float", f"COLOR_SCALARS {words[1]}")
            return words[1], values.reshape(n, n_components)
        if keyword == "LOOKUP_TABLE":
            if len(words) != 3:
                raise FileFormatError(f"expected 'LOOKUP_TABLE name size', got {_show(joined)}")
            size = _int(words[2], "LOOKUP_TABLE size")
            self.array(4 * size, "unsigned_char" if self.binary else "float", f"LOOKUP_TABLE {words[1]}")
            return None, None
        widths = {"VECTORS": 3, "NORMALS": 3, "TENSORS": 9, "TENSORS6": 6, "GLOBAL_IDS": 1, "PEDIGREE_IDS": 1,
                  "EDGE_FLAGS": 1}
        if keyword in widths:
            if len(words) != 3:
                raise FileFormatError(f"expected '{keyword} name type', got {_show(joined)}")
            width = widths[keyword]
            values = self.array(n * width, words[2], f"{keyword} {words[1]}")
            return words[1], values.reshape(n, width) if width > 1 else values
        if keyword == "TEXTURE_COORDINATES":
            if len(words) != 4:
                raise FileFormatError(f"expected 'TEXTURE_COORDINATES name dim type', got {_show(joined)}")
            width = _int(words[2], "TEXTURE_COORDINATES dimension", low=1)
            if width > 3:
                raise FileFormatError(f"TEXTURE_COORDINATES dimension must be 1, 2 or 3, got {width}")
            values = self.array(n * width, words[3], f"TEXTURE_COORDINATES {words[1]}")
            return words[1], values.reshape(n, width)
        raise FileFormatError(f"unknown keyword {_show(words[0])}")

    def read(self) -> RawMesh:
        words = self.words("DATASET")
        if words[0].upper() != "DATASET" or len(words) != 2:
            raise FileFormatError(f"expected 'DATASET POLYDATA', got {_show(' '.join(words))}")
        dataset = words[1].upper()
        if dataset not in ("POLYDATA", "UNSTRUCTURED_GRID"):
            raise FileFormatError(f"DATASET {dataset} is not a surface: only POLYDATA and UNSTRUCTURED_GRID are read")
        points, cells, cell_types, point_data, field_data = None, {}, None, {}, {}
        section, n_section = None, 0
        while True:  # each turn consumes at least one line
            words = self.words("", allow_end=True)
            if words is None:
                break
            keyword = words[0].upper()
            if keyword == "METADATA":
                self.skip_metadata()
            elif keyword == "FIELD" and section is None:
                field_data.update(self.field(words, "dataset"))
            elif keyword == "POINTS":
                if points is not None:
                    raise FileFormatError("two POINTS sections")
                if len(words) != 3:
                    raise FileFormatError(f"expected 'POINTS n type', got {_show(' '.join(words))}")
                n_points = _int(words[1], "POINTS count")
                points = self.array(3 * n_points, words[2], "POINTS").reshape(n_points, 3)
            elif keyword in _LEGACY_CELL_KEYWORDS and dataset == "POLYDATA" and section is None:
                kind = _LEGACY_CELL_KEYWORDS[keyword]
                if kind in cells:
                    raise FileFormatError(f"two {keyword} sections")
                cells[kind] = self.cells_legacy(keyword, words)
            elif keyword == "CELLS" and dataset == "UNSTRUCTURED_GRID" and section is None:
                cells["all"] = self.cells_legacy(keyword, words)
            elif keyword == "CELL_TYPES" and dataset == "UNSTRUCTURED_GRID" and section is None:
                if len(words) != 2:
                    raise FileFormatError(f"expected 'CELL_TYPES n', got {_show(' '.join(words))}")
                cell_types = self.array(_int(words[1], "CELL_TYPES count"), "int", "CELL_TYPES")
            elif keyword in ("POINT_DATA", "CELL_DATA"):
                if len(words) != 2:
                    raise FileFormatError(f"expected '{keyword} n', got {_show(' '.join(words))}")
                section, n_section = keyword, _int(words[1], f"{keyword} count")
                if keyword == "POINT_DATA" and points is not None and n_section != len(points):
                    raise FileFormatError(f"POINT_DATA has {n_section} values for {len(points)} points")
            elif keyword in _LEGACY_ATTRIBUTES and section is not None:
                name, values = self.attribute(words, n_section)
                if section == "POINT_DATA":
                    if isinstance(values, dict):
                        point_data.update(values)
                    elif name is not None:
                        point_data[name] = values
            else:
                raise FileFormatError(f"unexpected keyword {_show(words[0])} near byte {self.cursor.position}")
        if points is None:
            raise FileFormatError("no POINTS section")
        mesh = RawMesh(points=points, point_data=point_data)
        if dataset == "POLYDATA":
            mesh.polys, mesh.lines, mesh.strips = cells.get("polys"), cells.get("lines"), cells.get("strips")
        elif "all" in cells:
            if cell_types is None:
                raise FileFormatError("CELLS without CELL_TYPES")
            _split_unstructured(mesh, cells["all"], cell_types)
        landmarks = field_data.get("landmarks")
        if landmarks is not None:
            mesh.landmarks = np.asarray(landmarks).reshape(-1)
        return mesh


def _split_unstructured(mesh: RawMesh, cells: tuple, types: np.ndarray) -> None:
    """Sort the cells of an unstructured grid into polygons, lines and strips; refuse volume cells."""
    offsets, connectivity = cells
    if len(types) != len(offsets) - 1:
        raise FileFormatError(f"{len(types)} cell types for {len(offsets) - 1} cells")
    unknown = [int(t) for t in np.unique(types) if int(t) not in _UNSTRUCTURED_SURFACE_TYPES]
    if unknown:
        raise FileFormatError(
            f"cells of VTK types {unknown[:5]} are volume (or unsupported) cells: extract the surface first"
        )
    sizes = np.diff(offsets)
    for kind, selected in (("poly", (5, 7, 9)), ("line", (3, 4)), ("strip", (6,)), ("pixel", (8,))):
        mask = np.isin(types, selected)
        if not mask.any():
            continue
        picked = connectivity[np.repeat(mask, sizes)]
        new_offsets = np.concatenate([[0], np.cumsum(sizes[mask])]).astype(np.int64)
        if kind == "pixel":  # pixels (0, 1, 3, 2) are quads (0, 1, 2, 3) in another order
            if bool((sizes[mask] != 4).any()):
                raise FileFormatError("a pixel cell does not have 4 vertices")
            picked = picked.reshape(-1, 4)[:, [0, 1, 3, 2]].reshape(-1)
            kind = "poly"
        pair = (new_offsets, picked.astype(np.int64))
        if kind == "poly":
            mesh.polys = pair if mesh.polys is None else _join_cells(mesh.polys, pair)
        elif kind == "line":
            mesh.lines = pair
        else:
            mesh.strips = pair


def _join_cells(first: tuple, second: tuple) -> tuple:
    return (np.concatenate([first[0], second[0][1:] + first[0][-1]]), np.concatenate([first[1], second[1]]))


def read_legacy_vtk(data: bytes) -> RawMesh:
    """Parse a legacy ``.vtk`` file (versions 2.0 to 5.1, ASCII or BINARY; POLYDATA or UNSTRUCTURED_GRID)."""
    return _LegacyReader(data).read()


# --------------------------------------------------------------------------- PLY
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "int64": "i8", "uint64": "u8",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


@dataclass
class _PlyProperty:
    name: str
    dtype: str  # value type code
    count_dtype: str | None = None  # for lists


@dataclass
class _PlyElement:
    name: str
    count: int
    properties: list = field(default_factory=list)


def _ply_header(data: bytes) -> tuple[str, list, int]:
    if not data.startswith(b"ply"):
        raise FileFormatError("not a PLY file: it must start with 'ply'")
    end = data.find(b"end_header", 0, MAX_PLY_HEADER)
    if end < 0:
        raise FileFormatError(f"no 'end_header' in the first {MAX_PLY_HEADER} bytes")
    newline = data.find(b"\n", end)
    body = len(data) if newline < 0 else newline + 1
    try:
        header = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise FileFormatError("non-ASCII bytes in the PLY header") from None
    fmt, elements = None, []
    for number, line in enumerate(header.splitlines()[1:], start=2):
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            if len(words) != 3 or words[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise FileFormatError(f"header line {number}: unknown format {_show(line)}")
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3:
                raise FileFormatError(f"header line {number}: expected 'element name count', got {_show(line)}")
            elements.append(_PlyElement(words[1], _int(words[2], f"header line {number}: count of {words[1]}")))
        elif words[0] == "property":
            if not elements:
                raise FileFormatError(f"header line {number}: a property before any element")
            if len(words) == 5 and words[1] == "list":
                if words[2] not in _PLY_TYPES or words[3] not in _PLY_TYPES or _PLY_TYPES[words[2]][0] == "f":
                    raise FileFormatError(f"header line {number}: bad list types in {_show(line)}")
                elements[-1].properties.append(_PlyProperty(words[4], _PLY_TYPES[words[3]], _PLY_TYPES[words[2]]))
            elif len(words) == 3 and words[1] in _PLY_TYPES:
                elements[-1].properties.append(_PlyProperty(words[2], _PLY_TYPES[words[1]]))
            else:
                raise FileFormatError(f"header line {number}: unreadable property {_show(line)}")
        else:
            raise FileFormatError(f"header line {number}: unexpected {_show(line)}")
    if fmt is None:
        raise FileFormatError("no 'format' line in the PLY header")
    return fmt, elements, body


def _ply_binary_element(cursor: _Cursor, element: _PlyElement, order: str) -> dict:
    n = element.count
    props = element.properties
    lists = [p for p in props if p.count_dtype is not None]
    if not lists:
        dtype = np.dtype([(f"p{i}", order + p.dtype) for i, p in enumerate(props)])
        if n * dtype.itemsize > cursor.left:
            raise FileFormatError(
                f"element {element.name}: {n} records of {dtype.itemsize} bytes declared, "
                f"only {cursor.left} bytes left"
            )
        table = np.frombuffer(cursor.data, dtype=dtype, count=n, offset=cursor.position)
        cursor.position += n * dtype.itemsize
        return {p.name: table[f"p{i}"].astype(np.dtype(p.dtype)) for i, p in enumerate(props)}
    minimum = sum(np.dtype(p.count_dtype if p.count_dtype else p.dtype).itemsize for p in props)
    if n * minimum > cursor.left:
        raise FileFormatError(
            f"element {element.name}: {n} records of at least {minimum} bytes declared, only {cursor.left} bytes left"
        )
    if n == 0:
        return {p.name: (np.zeros(1, np.int64), np.zeros(0, np.int64)) if p.count_dtype else np.zeros(0) for p in props}
    # fast path: every list has the length of the first record's
    fields, offset, first_lengths = [], cursor.position, []
    for i, p in enumerate(props):
        if p.count_dtype is None:
            fields.append((f"p{i}", order + p.dtype))
            offset += np.dtype(p.dtype).itemsize
            continue
        if offset + np.dtype(p.count_dtype).itemsize > len(cursor.data):
            raise FileFormatError(f"element {element.name}: the file ends in the first record")
        length = int(np.frombuffer(cursor.data, dtype=order + p.count_dtype, count=1, offset=offset)[0])
        if length < 0 or length > cursor.left:
            raise FileFormatError(f"element {element.name}: a list of {length} entries")
        first_lengths.append(length)
        fields.append((f"c{i}", order + p.count_dtype))
        fields.append((f"p{i}", order + p.dtype, (length,)) if length else (f"p{i}", order + p.dtype, (0,)))
        offset += np.dtype(p.count_dtype).itemsize + length * np.dtype(p.dtype).itemsize
    dtype = np.dtype(fields)
    if n * dtype.itemsize <= cursor.left:
        table = np.frombuffer(cursor.data, dtype=dtype, count=n, offset=cursor.position)
        lengths = iter(first_lengths)
        if all(bool((table[f"c{i}"] == next(lengths)).all()) for i, p in enumerate(props) if p.count_dtype):
            cursor.position += n * dtype.itemsize
            out = {}
            for i, p in enumerate(props):
                values = table[f"p{i}"].astype(np.dtype(p.dtype))
                if p.count_dtype:
                    width = values.shape[1]
                    out[p.name] = (np.arange(n + 1, dtype=np.int64) * width, _widen(values.reshape(-1)))
                else:
                    out[p.name] = values
            return out
    # general case: records of different sizes, read one by one (bounded: n * minimum <= bytes left)
    scalars = {p.name: np.empty(n, dtype=p.dtype) for p in props if p.count_dtype is None}
    lists_out = {p.name: ([0], []) for p in props if p.count_dtype}
    data, position = cursor.data, cursor.position
    for record in range(n):
        for p in props:
            if p.count_dtype is None:
                size = np.dtype(p.dtype).itemsize
                if position + size > len(data):
                    raise FileFormatError(f"element {element.name}: the file ends in record {record} of {n}")
                scalars[p.name][record] = np.frombuffer(data, dtype=order + p.dtype, count=1, offset=position)[0]
                position += size
                continue
            size = np.dtype(p.count_dtype).itemsize
            if position + size > len(data):
                raise FileFormatError(f"element {element.name}: the file ends in record {record} of {n}")
            length = int(np.frombuffer(data, dtype=order + p.count_dtype, count=1, offset=position)[0])
            position += size
            nbytes = length * np.dtype(p.dtype).itemsize
            if length < 0 or position + nbytes > len(data):
                raise FileFormatError(
                    f"element {element.name}: record {record} declares a list of {length} entries beyond the end"
                )
            values = np.frombuffer(data, dtype=order + p.dtype, count=length, offset=position)
            position += nbytes
            offsets, chunks = lists_out[p.name]
            offsets.append(offsets[-1] + length)
            chunks.append(values)
    cursor.position = position
    out = dict(scalars)
    for name, (offsets, chunks) in lists_out.items():
        out[name] = (np.asarray(offsets, dtype=np.int64), _widen(np.concatenate(chunks)))
    return out


def _widen(values: np.ndarray) -> np.ndarray:
    """int64 for integer lists (vertex indices), float64 for the others (texture coordinates...)."""
    return values.astype(np.int64 if values.dtype.kind in "iu" else np.float64)


def _ply_ascii_element(tokens: list, start: int, element: _PlyElement) -> tuple[dict, int]:
    n, props = element.count, element.properties
    left = len(tokens) - start
    minimum = len(props)  # every property takes at least one token (a list its count)
    if n * minimum > left:
        raise FileFormatError(f"element {element.name}: {n} records declared, only {left} values left")
    if n == 0:
        return {p.name: (np.zeros(1, np.int64), np.zeros(0, np.int64)) if p.count_dtype else np.zeros(0) for p in props}, start
    kinds = ["f" if p.dtype[0] == "f" else "i" for p in props]
    if not any(p.count_dtype for p in props):
        table = _parse_tokens(tokens[start : start + n * len(props)], "f", f"element {element.name}")
        table = table.reshape(n, len(props))
        out = {}
        for i, p in enumerate(props):
            column = table[:, i]
            if kinds[i] == "i" and bool((column != np.round(column)).any()):
                raise FileFormatError(f"element {element.name}: property {p.name} must hold integers")
            out[p.name] = column
        return out, start + n * len(props)
    # fast path: lists as long as in the first record
    widths, position = [], start
    for p in props:
        if p.count_dtype:
            length = _int(tokens[position] if position < len(tokens) else b"", f"element {element.name}: list length")
            widths.append(1 + length)
            position += 1 + length
        else:
            widths.append(1)
            position += 1
    width = sum(widths)
    if n * width <= left:
        table = _parse_tokens(tokens[start : start + n * width], "f", f"element {element.name}").reshape(n, width)
        columns = np.cumsum([0] + widths)
        if all(bool((table[:, columns[i]] == widths[i] - 1).all()) for i, p in enumerate(props) if p.count_dtype):
            out = {}
            for i, p in enumerate(props):
                if p.count_dtype:
                    values = table[:, columns[i] + 1 : columns[i + 1]].reshape(-1)
                    if kinds[i] == "i":
                        if bool((values != np.round(values)).any()):
                            raise FileFormatError(f"element {element.name}: list {p.name} must hold integers")
                        values = values.astype(np.int64)
                    out[p.name] = (np.arange(n + 1, dtype=np.int64) * (widths[i] - 1), values)
                else:
                    out[p.name] = table[:, columns[i]]
            return out, start + n * width
    # general case, record by record (bounded: n * minimum <= tokens left)
    scalars = {p.name: [] for p in props if p.count_dtype is None}
    lists_out = {p.name: ([0], []) for p in props if p.count_dtype}
    position = start
    for record in range(n):
        for p in props:
            if position >= len(tokens):
                raise FileFormatError(f"element {element.name}: the values end in record {record} of {n}")
            if p.count_dtype is None:
                scalars[p.name].append(tokens[position])
                position += 1
                continue
            length = _int(tokens[position], f"element {element.name}: list length in record {record}")
            if position + 1 + length > len(tokens):
                raise FileFormatError(f"element {element.name}: record {record} declares a list beyond the end")
            offsets, chunks = lists_out[p.name]
            offsets.append(offsets[-1] + length)
            chunks.extend(tokens[position + 1 : position + 1 + length])
            position += 1 + length
    out = {name: _parse_tokens(values, "f", f"element {element.name}") for name, values in scalars.items()}
    for i, p in enumerate(props):
        if p.count_dtype:
            offsets, chunks = lists_out[p.name]
            out[p.name] = (np.asarray(offsets, dtype=np.int64), _parse_tokens(chunks, kinds[i], f"element {element.name}"))
    return out, position


def read_ply(data: bytes) -> RawMesh:
    """Parse a ``.ply`` file (ASCII or binary, any element layout; vertex, face and edge elements are used)."""
    fmt, elements, body = _ply_header(data)
    values = {}
    if fmt == "ascii":
        tokens = data[body:].split()
        position = 0
        for element in elements:
            values[element.name], position = _ply_ascii_element(tokens, position, element)
        if position != len(tokens):
            raise FileFormatError(f"{len(tokens) - position} values after the last element")
    else:
        cursor = _Cursor(data, body)
        order = "<" if fmt == "binary_little_endian" else ">"
        for element in elements:
            values[element.name] = _ply_binary_element(cursor, element, order)
        if data[cursor.position :].strip():
            raise FileFormatError(f"{cursor.left} bytes after the last element")
    vertex = values.get("vertex")
    if vertex is None:
        raise FileFormatError("no 'vertex' element")
    missing = [axis for axis in ("x", "y") if axis not in vertex or isinstance(vertex[axis], tuple)]
    if missing:
        raise FileFormatError(f"the vertex element has no {' or '.join(missing)} property")
    columns = [vertex["x"], vertex["y"]] + ([vertex["z"]] if "z" in vertex and not isinstance(vertex["z"], tuple) else [])
    points = np.stack(columns, axis=1).astype(np.float64 if any(c.dtype == np.float64 for c in columns) else np.float32)
    point_data = {
        name: value
        for name, value in vertex.items()
        if name not in ("x", "y", "z", "nx", "ny", "nz") and not isinstance(value, tuple)
    }
    mesh = RawMesh(points=points, point_data=point_data)
    face = values.get("face")
    if face is not None:
        lists = [face[name] for name in ("vertex_indices", "vertex_index") if name in face]
        if not lists or not isinstance(lists[0], tuple):
            raise FileFormatError("the face element has no 'vertex_indices' list")
        if lists[0][1].dtype.kind == "f":
            raise FileFormatError("the face vertex indices must be integers, not floats")
        mesh.polys = lists[0]
    edge = values.get("edge")
    if edge is not None and "vertex1" in edge and "vertex2" in edge:
        pairs = np.stack([edge["vertex1"], edge["vertex2"]], axis=1)
        if bool((pairs != np.round(pairs)).any()):
            raise FileFormatError("edge vertex indices must be integers")
        mesh.lines = (np.arange(len(pairs) + 1, dtype=np.int64) * 2, pairs.reshape(-1).astype(np.int64))
    return mesh


# --------------------------------------------------------------------------- OBJ
_OBJ_STATEMENT = re.compile(rb"^[ \t]*([vfl])[ \t]", re.MULTILINE)
_OBJ_VERTEX = re.compile(rb"^[ \t]*v[ \t]+(\S+)[ \t]+(\S+)[ \t]+(\S+)", re.MULTILINE)
_OBJ_TRIANGLE = re.compile(
    rb"^[ \t]*f[ \t]+(\d+)(?:/\S*)?[ \t]+(\d+)(?:/\S*)?[ \t]+(\d+)(?:/\S*)?[ \t]*\r?$", re.MULTILINE
)


def read_obj(data: bytes) -> RawMesh:
    """Parse a Wavefront ``.obj`` file: ``v`` vertices (extra columns ignored), ``f`` faces, ``l`` polylines.

    Indices may be negative (relative to the last vertex so far) and carry
    ``/vt/vn`` parts, which are ignored; the vertex order of the file is kept.
    """
    # fast path (regular expressions, no Python loop over lines): vertices and triangles with positive indices
    kinds = _OBJ_STATEMENT.findall(data)
    n_vertices, n_faces = kinds.count(b"v"), kinds.count(b"f")
    if n_vertices and n_vertices + n_faces == len(kinds):
        vertices = _OBJ_VERTEX.findall(data)
        triangles = _OBJ_TRIANGLE.findall(data) if n_faces else []
        if len(vertices) == n_vertices and len(triangles) == n_faces:
            tokens = [token for vertex in vertices for token in vertex]
            mesh = RawMesh(points=_parse_tokens(tokens, "f", "vertex coordinates").reshape(-1, 3))
            if n_faces:
                indices = _parse_tokens([token for t in triangles for token in t], "i", "vertex indices")
                if bool((indices == 0).any()):
                    raise FileFormatError("vertex index 0 (OBJ indices start at 1)")
                mesh.polys = (np.arange(n_faces + 1, dtype=np.int64) * 3, indices - 1)
            return mesh
    return _read_obj_lines(data)


def _read_obj_lines(data: bytes) -> RawMesh:
    """The general OBJ parser, line by line: polygons, polylines, negative indices, precise error messages."""
    vertices, faces, face_sizes, lines, line_sizes = [], [], [], [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        words = raw.split()
        if not words or words[0].startswith(b"#"):
            continue
        key = words[0]
        if key == b"v":
            if len(words) < 4:
                raise FileFormatError(f"line {number}: a vertex needs 3 coordinates, got {len(words) - 1}")
            vertices.append(words[1:4])
        elif key in (b"f", b"l"):
            indices = []
            for word in words[1:]:
                index = _int(word.split(b"/", 1)[0], f"line {number}: vertex index", low=-(2**62))
                if index == 0:
                    raise FileFormatError(f"line {number}: vertex index 0 (OBJ indices start at 1)")
                indices.append(index - 1 if index > 0 else len(vertices) + index)
            if key == b"f":
                if len(indices) < 3:
                    raise FileFormatError(f"line {number}: a face needs at least 3 vertices, got {len(indices)}")
                faces.extend(indices)
                face_sizes.append(len(indices))
            else:
                if len(indices) < 2:
                    raise FileFormatError(f"line {number}: a line needs at least 2 vertices, got {len(indices)}")
                lines.extend(indices)
                line_sizes.append(len(indices))
        # other statements (vt, vn, g, o, s, usemtl, mtllib...) carry no geometry we use
    if not vertices:
        raise FileFormatError("no vertices ('v' lines)")
    flat = [token for vertex in vertices for token in vertex]
    points = _parse_tokens(flat, "f", "vertex coordinates").reshape(-1, 3)
    mesh = RawMesh(points=points)
    if face_sizes:
        mesh.polys = (np.concatenate([[0], np.cumsum(face_sizes)]).astype(np.int64), np.asarray(faces, dtype=np.int64))
    if line_sizes:
        mesh.lines = (np.concatenate([[0], np.cumsum(line_sizes)]).astype(np.int64), np.asarray(lines, dtype=np.int64))
    return mesh


# --------------------------------------------------------------------------- STL
_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
_STL_VERTEX = re.compile(rb"vertex\s+(\S+)\s+(\S+)\s+(\S+)")


def read_stl(data: bytes) -> RawMesh:
    """Parse a binary or ASCII ``.stl`` file; exact duplicate corners become one vertex (first-seen order)."""
    n = 0
    if len(data) >= 84:
        n = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
        if 84 + 50 * n == len(data):
            corners = np.frombuffer(data, dtype=_STL_RECORD, count=n, offset=84)["corners"].reshape(-1, 3)
            return _triangle_soup(corners.astype(np.float32))
    if not data[:1024].lstrip().startswith(b"solid"):
        declared = f"its header declares {n} triangles, {84 + 50 * n} bytes, " if len(data) >= 84 else ""
        raise FileFormatError(
            f"neither a binary STL ({declared}for a file of {len(data)} bytes) nor an ASCII STL (starting with 'solid')"
        )
    try:
        data.decode("ascii")
    except UnicodeDecodeError:
        raise FileFormatError("an ASCII STL with non-ASCII bytes (or a binary STL whose size is wrong)") from None
    n_facets = len(re.findall(rb"\bfacet\b", data))
    triples = _STL_VERTEX.findall(data)
    if len(triples) != 3 * n_facets:
        raise FileFormatError(f"{n_facets} facets but {len(triples)} vertices (3 per facet expected)")
    tokens = [token for triple in triples for token in triple]
    return _triangle_soup(_parse_tokens(tokens, "f", "STL vertex").reshape(-1, 3).astype(np.float32))


def _triangle_soup(corners: np.ndarray) -> RawMesh:
    if len(corners) == 0:
        raise FileFormatError("no triangles")
    unique, first, inverse = np.unique(corners, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep the order in which the vertices first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    triangles = rank[inverse.reshape(-1)]
    offsets = np.arange(len(triangles) // 3 + 1, dtype=np.int64) * 3
    return RawMesh(points=unique[order], polys=(offsets, triangles.astype(np.int64)))


# --------------------------------------------------------------------------- VTK XML (.vtp, .vtu)
_XML_TYPES = {
    "Int8": "i1", "UInt8": "u1", "Int16": "i2", "UInt16": "u2", "Int32": "i4", "UInt32": "u4", "Int64": "i8",
    "UInt64": "u8", "Float32": "f4", "Float64": "f8",
}


def _base64(text: bytes, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FileFormatError(f"{what}: invalid base64 data") from None


def _base64_chars(n_bytes: int) -> int:
    return 4 * ((n_bytes + 2) // 3)


class _XmlReader:
    def __init__(self, data: bytes, expected_type: str):
        head = data[:MAX_LINE]
        if b"<VTKFile" not in head:
            raise FileFormatError("not a VTK XML file: no <VTKFile> element at the start")
        start = data.find(b"<AppendedData")
        xml_part = data if start < 0 else data[:start]
        if b"<!DOCTYPE" in xml_part or b"<!ENTITY" in xml_part:
            raise FileFormatError("document type or entity declarations are not allowed in VTK XML files")
        self.appended, self.appended_base64 = None, False
        if start >= 0:
            tag_end = data.find(b">", start)
            if tag_end < 0:
                raise FileFormatError("unterminated <AppendedData> tag")
            encoding = re.search(rb'encoding\s*=\s*"([^"]*)"', data[start:tag_end])
            self.appended_base64 = encoding is None or encoding.group(1) == b"base64"
            marker = data.find(b"_", tag_end)
            close = data.rfind(b"</AppendedData>")
            if marker < 0 or close < marker:
                raise FileFormatError("no '_' marker or no </AppendedData> in the appended data")
            self.appended = data[marker + 1 : close]
            if self.appended_base64:
                self.appended = b"".join(self.appended.split())
            xml_part = data[:start] + b"</VTKFile>"
        try:
            self.root = ET.fromstring(xml_part)
        except ET.ParseError as error:
            raise FileFormatError(f"invalid XML ({error})") from None
        if self.root.tag != "VTKFile":
            raise FileFormatError(f"the root element is <{self.root.tag}>, not <VTKFile>")
        file_type = self.root.get("type")
        if file_type != expected_type:
            raise FileFormatError(f"VTKFile type is {file_type!r}, expected {expected_type!r}")
        self.order = ">" if self.root.get("byte_order", "LittleEndian") == "BigEndian" else "<"
        header = self.root.get("header_type", "UInt32")
        if header not in ("UInt32", "UInt64"):
            raise FileFormatError(f"unsupported header_type {header!r}")
        self.header = np.dtype(self.order + _XML_TYPES[header])
        self.compressor = self.root.get("compressor")
        if self.compressor not in (None, "", "vtkZLibDataCompressor", "vtkLZMADataCompressor", "vtkLZ4DataCompressor"):
            raise FileFormatError(f"unsupported compressor {self.compressor!r}")
        self.size = len(data)
        # the largest expansion a compressed block can have: what a declared size is checked against
        self.ratio = {"vtkZLibDataCompressor": MAX_COMPRESSION_RATIO, "vtkLZ4DataCompressor": 300,
                      "vtkLZMADataCompressor": 10**6}.get(self.compressor, 1)

    def _decompress(self, block: bytes, size: int, what: str) -> bytes:
        try:
            if self.compressor == "vtkZLibDataCompressor":
                out = zlib.decompressobj().decompress(block, size)
            elif self.compressor == "vtkLZMADataCompressor":
                out = lzma.LZMADecompressor().decompress(block, max_length=size)
            else:
                try:
                    import lz4.block
                except ImportError:
                    raise FileFormatError(f"{what}: LZ4-compressed data needs the lz4 package") from None
                out = lz4.block.decompress(block, uncompressed_size=size)
        except FileFormatError:
            raise
        except (zlib.error, lzma.LZMAError, RuntimeError, ValueError) as error:  # RuntimeError: lz4
            raise FileFormatError(f"{what}: corrupted compressed data ({error})") from None
        if len(out) != size:
            raise FileFormatError(f"{what}: a compressed block gives {len(out)} bytes, {size} declared")
        return out

    def _payload(self, source: bytes, base64_encoded: bool, n_bytes: int, what: str) -> bytes:
        """The ``n_bytes`` bytes of an array from its encoded source (header + data)."""
        hsize = self.header.itemsize
        if not self.compressor:
            if base64_encoded:
                head_chars = _base64_chars(hsize)
                if source[head_chars - 1 : head_chars] == b"=":  # header and data encoded separately
                    raw = _base64(source[:head_chars], what)[:hsize] + _base64(
                        source[head_chars : head_chars + _base64_chars(n_bytes)], what
                    )
                else:
                    raw = _base64(source[: _base64_chars(hsize + n_bytes)], what)
            else:
                raw = source[: hsize + n_bytes]
            if len(raw) < hsize:
                raise FileFormatError(f"{what}: the data ends in the array header")
            declared = int(np.frombuffer(raw, dtype=self.header, count=1)[0])
            if declared != n_bytes:
                raise FileFormatError(f"{what}: the array header declares {declared} bytes, {n_bytes} expected")
            if len(raw) < hsize + n_bytes:
                raise FileFormatError(f"{what}: {n_bytes} bytes expected, {len(raw) - hsize} in the file")
            return raw[hsize : hsize + n_bytes]
        # compressed: [n_blocks, block_size, last_block_size, compressed sizes...] then the blocks
        first = _base64(source[: _base64_chars(hsize)], what)[:hsize] if base64_encoded else source[:hsize]
        if len(first) < hsize:
            raise FileFormatError(f"{what}: the data ends in the compression header")
        n_blocks = int(np.frombuffer(first, dtype=self.header, count=1)[0])
        if (3 + n_blocks) * hsize > len(source):
            raise FileFormatError(f"{what}: {n_blocks} compressed blocks declared, the file is too short")
        header_bytes = (3 + n_blocks) * hsize
        if base64_encoded:
            header_chars = _base64_chars(header_bytes)
            header = np.frombuffer(_base64(source[:header_chars], what)[:header_bytes], dtype=self.header)
        else:
            header_chars = header_bytes
            header = np.frombuffer(source[:header_bytes], dtype=self.header)
        if len(header) != 3 + n_blocks:
            raise FileFormatError(f"{what}: truncated compression header")
        block_size, last_size = int(header[1]), int(header[2])
        sizes = header[3:].astype(np.int64)
        if n_blocks == 0:
            total = 0
        else:
            if block_size <= 0 or last_size > block_size:
                raise FileFormatError(f"{what}: block sizes {block_size} and {last_size} are inconsistent")
            total = (n_blocks - 1) * block_size + (last_size or block_size)
        if total != n_bytes:
            raise FileFormatError(f"{what}: the compression header declares {total} bytes, {n_bytes} expected")
        compressed = int(sizes.sum()) if n_blocks else 0
        if n_bytes > self.ratio * compressed + 1024:
            raise FileFormatError(f"{what}: {n_bytes} bytes cannot come out of {compressed} compressed bytes")
        if base64_encoded:
            body = _base64(source[header_chars : header_chars + _base64_chars(compressed)], what)
        else:
            body = source[header_chars : header_chars + compressed]
        if len(body) < compressed:
            raise FileFormatError(f"{what}: {compressed} compressed bytes declared, {len(body)} in the file")
        pieces, position = [], 0
        for k in range(n_blocks):  # bounded: n_blocks * header size <= file size
            size = block_size if (k < n_blocks - 1 or last_size == 0) else last_size
            pieces.append(self._decompress(body[position : position + int(sizes[k])], size, what))
            position += int(sizes[k])
        return b"".join(pieces)

    def array(self, element, n_tuples: int, n_components: int | None, what: str) -> np.ndarray:
        """Decode a <DataArray> into shape (n_tuples,) or (n_tuples, n_components)."""
        type_name = element.get("type")
        if type_name not in _XML_TYPES:
            raise FileFormatError(f"{what}: unsupported DataArray type {type_name!r}")
        components = _int(element.get("NumberOfComponents", "1"), f"{what}: NumberOfComponents", low=1)
        if n_components is not None and components != n_components:
            raise FileFormatError(f"{what}: {components} components, {n_components} expected")
        count = n_tuples * components
        dtype = np.dtype(self.order + _XML_TYPES[type_name])
        n_bytes = count * dtype.itemsize
        fmt = element.get("format", "ascii")
        if fmt == "ascii":
            text = (element.text or "").encode("ascii", errors="replace")
            tokens = text.split()
            if len(tokens) != count:
                raise FileFormatError(f"{what}: {len(tokens)} values, {count} expected")
            values = _parse_tokens(tokens, "f" if dtype.kind == "f" else "i", what)
        else:
            if fmt == "binary":
                source, encoded = b"".join((element.text or "").encode("ascii", errors="replace").split()), True
                if n_bytes > len(source) * 3 // 4 * self.ratio + 1024:
                    raise FileFormatError(f"{what}: {count} values declared, the array holds far fewer bytes")
            elif fmt == "appended":
                if self.appended is None:
                    raise FileFormatError(f"{what}: format 'appended' without <AppendedData>")
                offset = _int(element.get("offset"), f"{what}: offset")
                if offset > len(self.appended):
                    raise FileFormatError(f"{what}: offset {offset} beyond the appended data")
                source, encoded = self.appended[offset:], self.appended_base64
            else:
                raise FileFormatError(f"{what}: unknown format {fmt!r}")
            if not self.compressor and n_bytes > len(source):
                raise FileFormatError(f"{what}: {count} values declared ({n_bytes} bytes), only {len(source)} bytes left")
            values = np.frombuffer(self._payload(source, encoded, n_bytes, what), dtype=dtype)
            values = values.astype(dtype.newbyteorder("="))
        return values.reshape(n_tuples, components) if components > 1 else values

    def cells(self, piece, tag: str, count: int) -> tuple | None:
        node = piece.find(tag)
        if node is None:
            if count:
                raise FileFormatError(f"{count} {tag.lower()} declared but no <{tag}> element")
            return None
        arrays = {a.get("Name"): a for a in node.findall("DataArray")}
        if "connectivity" not in arrays or "offsets" not in arrays:
            raise FileFormatError(f"<{tag}> needs 'connectivity' and 'offsets' arrays")
        ends = self.array(arrays["offsets"], count, 1, f"{tag} offsets").astype(np.int64)
        n_connectivity = int(ends[-1]) if count else 0
        if n_connectivity < 0 or n_connectivity > self.size * self.ratio:
            raise FileFormatError(f"{tag}: the offsets end at {n_connectivity}, impossible for this file")
        connectivity = self.array(arrays["connectivity"], n_connectivity, 1, f"{tag} connectivity").astype(np.int64)
        offsets = _check_offsets(np.concatenate([[0], ends]), n_connectivity, tag)
        return offsets, connectivity

    def read(self, kind: str) -> RawMesh:
        dataset = self.root.find(kind)
        if dataset is None:
            raise FileFormatError(f"no <{kind}> element")
        pieces = dataset.findall("Piece")
        if not pieces:
            raise FileFormatError("no <Piece> element")
        meshes = []
        for number, piece in enumerate(pieces):
            n_points = _int(piece.get("NumberOfPoints"), f"piece {number}: NumberOfPoints")
            node = piece.find("Points/DataArray")
            if node is None:
                raise FileFormatError(f"piece {number}: no <Points> array")
            points = self.array(node, n_points, 3, "Points")
            mesh = RawMesh(points=points)
            if kind == "PolyData":
                mesh.polys = self.cells(piece, "Polys", _int(piece.get("NumberOfPolys", "0"), "NumberOfPolys"))
                mesh.lines = self.cells(piece, "Lines", _int(piece.get("NumberOfLines", "0"), "NumberOfLines"))
                mesh.strips = self.cells(piece, "Strips", _int(piece.get("NumberOfStrips", "0"), "NumberOfStrips"))
            else:
                n_cells = _int(piece.get("NumberOfCells", "0"), "NumberOfCells")
                cells = self.cells(piece, "Cells", n_cells)
                if cells is not None:
                    node = piece.find("Cells")
                    types = [a for a in node.findall("DataArray") if a.get("Name") == "types"]
                    if not types:
                        raise FileFormatError("<Cells> needs a 'types' array")
                    _split_unstructured(mesh, cells, self.array(types[0], n_cells, 1, "cell types"))
            for array in piece.findall("PointData/DataArray"):
                name = array.get("Name") or "array"
                if array.get("type") in _XML_TYPES:
                    mesh.point_data[name] = self.array(array, n_points, None, f"PointData {name!r}")
            meshes.append(mesh)
        mesh = meshes[0] if len(meshes) == 1 else _join_pieces(meshes)
        for array in self.root.findall(f"{kind}/FieldData/DataArray"):
            if array.get("Name") == "landmarks":
                n = _int(array.get("NumberOfTuples", "0"), "landmarks NumberOfTuples")
                mesh.landmarks = self.array(array, n, None, "FieldData 'landmarks'").reshape(-1)
        return mesh


def _join_pieces(meshes: list) -> RawMesh:
    shift = np.cumsum([0] + [len(m.points) for m in meshes])
    joined = RawMesh(points=np.concatenate([m.points for m in meshes]))
    for name in ("polys", "lines", "strips"):
        parts = [(getattr(m, name), s) for m, s in zip(meshes, shift) if getattr(m, name) is not None]
        if parts:
            cells = (parts[0][0][0], parts[0][0][1] + parts[0][1])
            for (offsets, connectivity), s in parts[1:]:
                cells = _join_cells(cells, (offsets, connectivity + s))
            setattr(joined, name, cells)
    common = set.intersection(*(set(m.point_data) for m in meshes))
    joined.point_data = {name: np.concatenate([m.point_data[name] for m in meshes]) for name in common}
    return joined


def read_vtk_xml(data: bytes, kind: str = "PolyData") -> RawMesh:
    """Parse a VTK XML file (``.vtp``: ``kind="PolyData"``, ``.vtu``: ``"UnstructuredGrid"``).

    ASCII, inline base64 and appended (raw or base64) arrays; UInt32 or
    UInt64 headers; zlib, LZMA or (with the lz4 package) LZ4 compression.
    """
    return _XmlReader(data, kind).read(kind)


#: Parsers by file extension.
PARSERS = {
    ".vtk": read_legacy_vtk,
    ".vtp": read_vtk_xml,
    ".vtu": lambda data: read_vtk_xml(data, "UnstructuredGrid"),
    ".ply": read_ply,
    ".obj": read_obj,
    ".stl": read_stl,
}
