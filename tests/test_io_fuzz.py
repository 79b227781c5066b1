"""Fuzzing ``sks.read`` with corrupted versions of real files: no crash, no hang, only documented errors.

The seed files are the real data of ``../shared/data`` (a skull outline, a patch of the face template), written
in every format and encoding that :func:`skshapes.read` parses itself (legacy VTK ASCII/binary, VTK XML with
compressed, raw appended and ASCII arrays, PLY ASCII/binary, OBJ, STL ASCII/binary) plus the skull file as it is
on disk. Hypothesis corrupts them (byte flips, truncation, inserted garbage, deleted spans, changed counts and
indices, NaN/inf coordinates) and each corrupted file is read in this process: the readers are numpy and the
standard library only (no VTK parser sees the bytes), so they cannot segfault, and a crash here is a bug.

Allowed outcomes: a valid PolyData (finite float32 points, indices in range), possibly with a MeshQualityWarning,
or a ValueError naming the file. Anything else fails. ``derandomize=True`` makes the examples the same on every
run; about 1,300 files are read in all, in well under two minutes.
"""

from __future__ import annotations

import re
import shutil
import struct
import time
import warnings
from pathlib import Path

import pytest
import torch

import skshapes as sks
from skshapes.shapes import MeshQualityWarning

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SKULL = DATA / "skulls" / "template.vtk"
FACE = DATA / "faces" / "Template_1K.obj"

EXAMPLES_PER_SEED = 100  # x 13 seed files = 1,300 corrupted files per run
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_SEED,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

SEEDS = [
    "skull_original.vtk",
    "face_ascii.vtk",
    "face_binary.vtk",
    "skull_binary.vtk",
    "face_zlib.vtp",
    "face_raw.vtp",
    "face_ascii.vtp",
    "face_binary.ply",
    "face_ascii.ply",
    "face.obj",
    "face_binary.stl",
    "face_ascii.stl",
    "face_zlib.vtu",
]


class Seeds(dict):
    """The seed files' bytes by name, with a short repr for hypothesis' failure reports."""

    def __repr__(self):
        return f"Seeds({sorted(self)})"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """Small real files in every format: the skull template as is, and a 60-triangle patch of the face template."""
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    if not SKULL.is_file() or not FACE.is_file():
        pytest.skip(f"needs the shared data in {DATA}")
    folder = tmp_path_factory.mktemp("seeds")
    shutil.copy(SKULL, folder / "skull_original.vtk")
    face = sks.read(FACE)
    patch = face.triangles[:60]
    used, inverse = torch.unique(patch, return_inverse=True)
    small = sks.PolyData(face.points[used], triangles=inverse, landmarks=[0, 5, 9])
    mesh = small.to_pyvista()
    mesh.save(folder / "face_ascii.vtk", binary=False)
    mesh.save(folder / "face_binary.vtk", binary=True)
    sks.read(SKULL).to_pyvista().save(folder / "skull_binary.vtk", binary=True)
    mesh.save(folder / "face_zlib.vtp", binary=True, compression="zlib")
    mesh.save(folder / "face_ascii.vtp", binary=False)
    writer = vtkXMLPolyDataWriter()  # appended raw arrays, no compression
    writer.SetFileName(str(folder / "face_raw.vtp"))
    writer.SetInputData(mesh)
    writer.SetDataModeToAppended()
    writer.EncodeAppendedDataOff()
    writer.SetCompressorTypeToNone()
    writer.Write()
    mesh.save(folder / "face_binary.ply", binary=True)
    mesh.save(folder / "face_ascii.ply", binary=False)
    small.save(folder / "face.obj")
    mesh.save(folder / "face_binary.stl", binary=True)
    mesh.save(folder / "face_ascii.stl", binary=False)
    mesh.cast_to_unstructured_grid().save(folder / "face_zlib.vtu", binary=True, compression="zlib")
    originals = Seeds({name: (folder / name).read_bytes() for name in SEEDS})
    for name in originals:  # every seed reads as it is
        assert sks.read(folder / name).n_points > 0, name
    return originals


# ------------------------------------------------------------------------------------------------ mutations
NUMBER = re.compile(rb"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")
BIG_COUNTS = [0, 1, 2, 3, 7, 255, 65535, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 10**12, 2**63 - 1, 2**64, 10**30, -1]
NAN_TOKENS = [b"nan", b"NaN", b"inf", b"-inf", b"1e999", b"-1e999", b"1e38", b"1e-45"]
NAN_BYTES = [
    struct.pack("<f", float("nan")), struct.pack(">f", float("nan")), struct.pack("<f", float("inf")),
    struct.pack(">f", float("-inf")), struct.pack("<d", float("nan"))[:4], b"\xff\xff\xff\xff",
    b"\x7f\xff\xff\xff", b"\x00\x00\x80\x7f",
]


def _flip(data: bytes, spots: list) -> bytes:
    out = bytearray(data)
    for where, value in spots if out else []:
        out[int(where * (len(out) - 1))] = value
    return bytes(out)


def _truncate(data: bytes, where: float) -> bytes:
    return data[: int(where * len(data))]


def _insert(data: bytes, where: float, garbage: bytes) -> bytes:
    i = int(where * len(data))
    return data[:i] + garbage + data[i:]


def _delete(data: bytes, where: float, length: int) -> bytes:
    i = int(where * len(data))
    return data[:i] + data[i + length :]


def _replace_number(data: bytes, which: float, value: bytes, header_only: bool) -> bytes:
    """Replace the k-th number token (in the first 600 bytes when ``header_only``: the counts) by ``value``."""
    window = data[:600] if header_only else data
    matches = list(NUMBER.finditer(window))
    if not matches:
        return data
    match = matches[int(which * (len(matches) - 1))]
    return data[: match.start()] + value + data[match.end() :]


def _overwrite(data: bytes, where: float, chunk: bytes) -> bytes:
    i = int(where * max(len(data) - len(chunk), 0))
    return data[:i] + chunk + data[i + len(chunk) :]


def _swap_lines(data: bytes, first: float, second: float) -> bytes:
    lines = data.split(b"\n")
    i, j = int(first * (len(lines) - 1)), int(second * (len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def _duplicate_line(data: bytes, where: float) -> bytes:
    lines = data.split(b"\n")
    i = int(where * (len(lines) - 1))
    return b"\n".join(lines[: i + 1] + [lines[i]] + lines[i + 1 :])


fraction = st.floats(0, 1, allow_nan=False)
MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(fraction, st.integers(0, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), fraction),
    st.tuples(st.just("insert"), fraction, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("insert_text"), fraction, st.sampled_from([b" ", b"\n", b"0 ", b"-1 ", b"3 ", b"POINTS 5 float\n",
                                                              b"end_header\n", b"<DataArray>", b"f 1 2\n", b"v 1 2\n"])),
    st.tuples(st.just("delete"), fraction, st.integers(1, 200)),
    st.tuples(st.just("count"), fraction, st.sampled_from(BIG_COUNTS)),
    st.tuples(st.just("index"), fraction, st.sampled_from(BIG_COUNTS)),
    st.tuples(st.just("nan_text"), fraction, st.sampled_from(NAN_TOKENS)),
    st.tuples(st.just("nan_bytes"), fraction, st.sampled_from(NAN_BYTES)),
    st.tuples(st.just("swap_lines"), fraction, fraction),
    st.tuples(st.just("duplicate_line"), fraction),
)


def corrupt(data: bytes, mutation) -> bytes:
    kind, *args = mutation
    if kind == "flip":
        return _flip(data, args[0])
    if kind == "truncate":
        return _truncate(data, args[0])
    if kind in ("insert", "insert_text"):
        return _insert(data, *args)
    if kind == "delete":
        return _delete(data, *args)
    if kind in ("count", "index"):
        return _replace_number(data, args[0], str(args[1]).encode(), header_only=kind == "count")
    if kind == "nan_text":
        return _replace_number(data, args[0], args[1], header_only=False)
    if kind == "nan_bytes":
        return _overwrite(data, *args)
    if kind == "swap_lines":
        return _swap_lines(data, *args)
    return _duplicate_line(data, *args)


def check_outcome(path: Path, clean: bool) -> str:
    """Read ``path``: a valid shape or a ValueError naming the file; anything else (or a crash) fails the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            shape = sks.read(path, clean=clean)
        except ValueError as error:
            assert str(path) in str(error), f"the error does not name the file: {error}"
            return "error"
    unexpected = [w for w in caught if not issubclass(w.category, MeshQualityWarning)]
    assert not unexpected, f"unexpected warnings: {[str(w.message) for w in unexpected]}"
    assert isinstance(shape, sks.PolyData) and shape.dtype == torch.float32
    assert bool(torch.isfinite(shape.points).all())
    for cells in (shape.triangles, shape.edges):
        if cells is not None:
            assert int(cells.min()) >= 0 and int(cells.max()) < shape.n_points
    return "read"


@pytest.mark.parametrize("seed", SEEDS)
@FUZZ_SETTINGS
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=3), clean=st.booleans())
def test_corrupted_files_raise_value_error_or_read(seeds, tmp_path_factory, seed, mutations, clean):
    data = seeds[seed]
    for mutation in mutations:
        data = corrupt(data, mutation)
    folder = tmp_path_factory.getbasetemp() / "fuzz"
    folder.mkdir(exist_ok=True)
    path = folder / seed
    path.write_bytes(data)
    start = time.perf_counter()
    event(check_outcome(path, clean))  # pytest --hypothesis-show-statistics shows the mix of outcomes
    assert time.perf_counter() - start < 5.0, "reading a small corrupted file took more than 5 s"


def test_the_mutations_do_reach_every_outcome(seeds, tmp_path):
    """A sanity check of the fuzzer: truncations fail, a harmless trailing newline reads."""
    for name, data in seeds.items():
        path = tmp_path / name
        path.write_bytes(data[: len(data) // 3])
        assert check_outcome(path, clean=False) == "error", name
        if name != "face_binary.stl":  # binary STL: the size must be 84 + 50 n exactly
            path.write_bytes(data + b"\n")
            assert check_outcome(path, clean=False) == "read", name
