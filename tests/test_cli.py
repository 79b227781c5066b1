"""Tests of the ``skshapes`` command (skshapes.cli)."""

import math
import subprocess
import sys

import pytest
import torch

import skshapes as sks
from skshapes.cli import main


def _circle(n=60, radius=10.0, centre=(0.0, 0.0), squash=1.0):
    angles = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n)
    points = torch.stack([radius * torch.cos(angles) + centre[0], squash * radius * torch.sin(angles) + centre[1]], 1)
    edges = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n], dim=1)
    return sks.PolyData(points, edges=edges)


@pytest.fixture
def pair(tmp_path):
    source, target = tmp_path / "source.vtk", tmp_path / "target.vtk"
    _circle().save(source)
    _circle(n=50, centre=(3.0, -2.0), squash=0.8).save(target)
    return source, target


@pytest.mark.parametrize(
    "options",
    [
        ["--model", "rigid", "--loss", "sinkhorn", "--blur", "0.5"],
        ["--model", "lddmm", "--loss", "sinkhorn", "--sigma", "5", "--blur", "0.5"],
        ["--model", "lddmm", "--loss", "nearest", "--sigma", "5"],
    ],
)
def test_register_writes_readable_output(pair, tmp_path, capsys, options):
    source, target = pair
    output = tmp_path / "out" / "registered.vtk"
    code = main(["register", str(source), str(target), *options, "--n-iter", "5", "--threads", "1",
                 "-o", str(output)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert output.is_file()
    registered = sks.read(output)
    original = sks.read(source)
    assert registered.n_points == original.n_points and registered.dim == 2
    assert torch.equal(registered.edges, original.edges)
    assert torch.isfinite(registered.points).all()
    assert not torch.allclose(registered.points, original.points)  # it moved
    # one summary line naming the files and the losses
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    assert "source.vtk" in lines[0] and "target.vtk" in lines[0] and str(output) in lines[0] and "->" in lines[0]


def test_register_moves_source_towards_target(pair, tmp_path, capsys):
    source, target = pair
    threads_before = torch.get_num_threads()
    output = tmp_path / "registered.vtp"
    assert main(["register", str(source), str(target), "--model", "rigid", "--blur", "0.5", "--n-iter", "20",
                 "--threads", "1", "-o", str(output)]) == 0
    assert torch.get_num_threads() == threads_before  # restored
    loss = sks.SinkhornLoss(blur=0.5)
    before = float(loss(sks.read(source), sks.read(target)))
    after = float(loss(sks.read(output), sks.read(target)))
    assert after < 0.5 * before


@pytest.mark.parametrize(
    "options",
    [
        ["--model", "lddmm", "--loss", "varifold", "--sigma", "5"],
        ["--model", "lddmm", "--loss", "currents", "--sigma", "5", "--loss-sigma", "2"],
    ],
)
def test_register_with_kernel_losses_moves_source_towards_target(pair, tmp_path, capsys, options):
    source, target = pair
    output = tmp_path / "registered.vtk"
    assert main(["register", str(source), str(target), *options, "--n-iter", "10", "--threads", "1",
                 "-o", str(output)]) == 0, capsys.readouterr().err
    summary = capsys.readouterr().out
    assert f"{options[3]} loss (sigma=" in summary
    # judged by a loss the registration did not optimise
    loss = sks.SinkhornLoss(blur=0.5)
    before = float(loss(sks.read(source), sks.read(target)))
    after = float(loss(sks.read(output), sks.read(target)))
    assert after < 0.5 * before


def _skull(tmp_path):
    """The H. sapiens skull outline (2D curve, ~200 units long), saved to a file."""
    from skshapes.datasets import load_skulls

    skull = load_skulls().shapes[4]
    path = tmp_path / "skull.vtk"
    skull.save(path)
    return skull, path


@pytest.mark.parametrize(
    "model, loss, parameter",
    [
        # a 20 degree rotation and a shift of about 170 units (most of the skull's size)
        (sks.RigidMotion(), "varifold", [math.radians(20), 150.0, -80.0]),
        (sks.Similarity(), "varifold", [math.radians(20), math.log(1.2), 150.0, -80.0]),
        (sks.AffineDeformation(), "currents", [0.15, 0.2, -0.1, -0.1, 150.0, -80.0]),
    ],
    ids=["rigid", "similarity", "affine"],
)
def test_linear_models_recover_a_known_map(tmp_path, capsys, model, loss, parameter):
    skull, source = _skull(tmp_path)
    moved = model.transform_points(skull.points, skull, torch.tensor(parameter))
    target, output = tmp_path / "target.vtk", tmp_path / "registered.vtp"
    skull.with_points(moved).save(target)
    name = {"RigidMotion": "rigid", "Similarity": "similarity", "AffineDeformation": "affine"}[type(model).__name__]
    code = main(["register", str(source), str(target), "--model", name, "--loss", loss, "--n-iter", "40",
                 "--threads", "1", "-o", str(output)])
    assert code == 0, capsys.readouterr().err
    registered = sks.read(output)
    assert torch.equal(registered.edges, skull.edges)
    # vertex i of the target is vertex i of the skull moved: the known answer, vertex by vertex
    error_before = float(torch.linalg.norm(skull.points - moved, dim=1).mean())
    error_after = float(torch.linalg.norm(registered.points - moved, dim=1).mean())
    assert error_before > 100.0
    assert error_after < 2.0, f"mean vertex error {error_after:.3f} (skull ~200 units long)"


@pytest.mark.parametrize("loss", ["varifold", "currents"])
@pytest.mark.parametrize("cloud_is", ["source", "target"])
def test_kernel_losses_reject_point_clouds(pair, tmp_path, capsys, loss, cloud_is):
    source, target = pair
    cloud = tmp_path / "cloud.vtk"
    sks.PolyData(sks.read(target).points).save(cloud)  # the same points, without edges
    args = [str(cloud), str(target)] if cloud_is == "source" else [str(source), str(cloud)]
    output = tmp_path / "out.vtk"
    assert main(["register", *args, "--loss", loss, "-o", str(output)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "point cloud" in err and "cloud.vtk" in err and f"--loss {loss}" in err
    assert not output.exists()


def test_kernel_losses_reject_a_mesh_against_a_curve(tmp_path, capsys):
    curve = tmp_path / "curve.vtk"
    mesh = tmp_path / "mesh.vtk"
    sks.PolyData(torch.rand(4, 3), edges=torch.tensor([[0, 1], [1, 2], [2, 3]])).save(curve)
    sks.PolyData(torch.rand(4, 3), triangles=torch.tensor([[0, 1, 2], [0, 2, 3]])).save(mesh)
    assert main(["register", str(curve), str(mesh), "--loss", "currents", "-o", str(tmp_path / "o.vtk")]) == 2
    err = capsys.readouterr().err
    assert "curve" in err and "mesh" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "options, named",
    [
        (["--loss", "sinkhorn", "--loss-sigma", "2"], "--loss-sigma"),
        (["--loss", "varifold", "--blur", "2"], "--blur"),
        (["--model", "rigid", "--sigma", "5"], "--sigma"),
        (["--model", "affine", "--regularization-weight", "0.1"], "--regularization-weight"),
    ],
)
def test_options_that_do_not_apply_exit_2(pair, tmp_path, capsys, options, named):
    source, target = pair
    assert main(["register", str(source), str(target), *options, "-o", str(tmp_path / "out.vtk")]) == 2
    err = capsys.readouterr().err
    assert f"{named} applies to" in err and "Traceback" not in err
    assert not (tmp_path / "out.vtk").exists()


def test_register_help_lists_models_and_losses(capsys):
    assert main(["register", "--help"]) == 0
    text = capsys.readouterr().out
    for word in ("rigid", "similarity", "affine", "lddmm", "sinkhorn", "nearest", "varifold", "currents",
                 "--loss-sigma"):
        assert word in text


@pytest.mark.parametrize("missing", ["source", "target"])
def test_missing_input_file(pair, tmp_path, capsys, missing):
    source, target = pair
    absent = tmp_path / "absent.vtk"
    args = [str(absent), str(target)] if missing == "source" else [str(source), str(absent)]
    code = main(["register", *args, "-o", str(tmp_path / "out.vtk")])
    captured = capsys.readouterr()
    assert code == 2
    assert "absent.vtk" in captured.err and "not found" in captured.err
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out.vtk").exists()


def test_unreadable_input_file(pair, tmp_path, capsys):
    source, _ = pair
    broken = tmp_path / "broken.vtk"
    broken.write_text("this is not a mesh\n")
    code = main(["register", str(source), str(broken), "-o", str(tmp_path / "out.vtk")])
    captured = capsys.readouterr()
    assert code == 2
    assert "broken.vtk" in captured.err and "Traceback" not in captured.err


def test_bad_output_extension(pair, tmp_path, capsys):
    source, target = pair
    code = main(["register", str(source), str(target), "-o", str(tmp_path / "out.xyz")])
    assert code == 2
    assert ".xyz" in capsys.readouterr().err


def test_dimension_mismatch(pair, tmp_path, capsys):
    source, _ = pair
    mesh = tmp_path / "mesh.vtk"
    sks.PolyData(torch.rand(10, 3), triangles=torch.tensor([[0, 1, 2], [2, 3, 4]])).save(mesh)
    code = main(["register", str(source), str(mesh), "-o", str(tmp_path / "out.vtk")])
    assert code == 2
    assert "2D" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["register", "a.vtk"],
        ["register", "a.vtk", "b.vtk", "-o", "c.vtk", "--model", "spline"],
        ["register", "a.vtk", "b.vtk", "-o", "c.vtk", "--loss", "chamfer"],
        ["register", "a.vtk", "b.vtk", "-o", "c.vtk", "--loss", "varifold", "--loss-sigma", "0"],
        ["register", "a.vtk", "b.vtk", "-o", "c.vtk", "--sigma", "-1"],
        ["register", "a.vtk", "b.vtk", "-o", "c.vtk", "--n-iter", "0"],
        ["register", "a.vtk", "b.vtk", "-o", "c.vtk", "--threads", "0"],
        ["demo"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage" in capsys.readouterr().err


def test_demo_with_nothing_to_do(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--no-skulls", "--no-face", "--no-dysmorphology"]) == 2
    assert "nothing to do" in capsys.readouterr().err


def test_help_and_module_entry_point():
    completed = subprocess.run([sys.executable, "-m", "skshapes.cli", "--help"], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0
    assert "register" in completed.stdout and "demo" in completed.stdout
