"""The napari plugin of skshapes (npe2 manifest: ``skshapes/viz/napari.yaml``).

- a reader for ``.vtk .vtp .ply .obj .stl`` files (:func:`get_reader`): one
  layer per shape (Surface, Points or Shapes, see
  :func:`skshapes.viz.layers.layer_data`) and its landmarks as Points;
- a dock widget (:class:`RegistrationWidget`): register a source Surface
  layer onto a target Surface layer with :class:`skshapes.Registration` and
  add the registered source as a new layer.

This module imports magicgui (a napari dependency); napari loads it only
when the plugin is used, and ``import skshapes.viz`` never does.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, PushButton, SpinBox

from .layers import layer_data, shape_from_layer
from .plotting import MORPHED_COLOR

__all__ = ["LOSSES", "MODELS", "READABLE", "RegistrationWidget", "get_reader", "read_layers", "register_layers"]

#: File extensions that the reader claims (``sks.read`` reads them through pyvista/meshio).
READABLE = (".vtk", ".vtp", ".ply", ".obj", ".stl")
#: Choices of the widget, as in the ``skshapes register`` command.
MODELS = ("rigid", "similarity", "affine", "lddmm")
LOSSES = ("sinkhorn", "nearest", "varifold", "currents")


# ---------------------------------------------------------------- reader
def get_reader(path):
    """npe2 reader contribution: :func:`read_layers` if every path is a mesh file skshapes reads, else None.

    Parameters
    ----------
    path : str or path-like or list of them

    Returns
    -------
    callable or None
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or any(Path(p).suffix.lower() not in READABLE for p in paths):
        return None
    return read_layers


def read_layers(path):
    """Read mesh files into napari layer data: one layer per shape, plus one for its landmarks if any.

    Parameters
    ----------
    path : str or path-like or list of them
        ``.vtk .vtp .ply .obj .stl`` files, read by :func:`skshapes.read`.

    Returns
    -------
    list of (data, dict, str)
        napari ``LayerDataTuple`` s named after the files' stems.

    Raises
    ------
    ValueError
        If a file cannot be read as a shape (as :func:`skshapes.read`).
    """
    from ..shapes import read

    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers = []
    for p in paths:
        layers += layer_data(read(p), name=Path(p).stem)
    return layers


# ---------------------------------------------------------- registration
def register_layers(source, target, model="rigid", loss="sinkhorn", n_iter=50, sigma=None, name=None):
    """Register a source layer onto a target layer; the data of the registered source's layer.

    The defaults that depend on the data are those of the ``skshapes
    register`` command: LDDMM kernel width 0.1 x the diagonal of the
    bounding box of both shapes, regularization weight 1e-3, Sinkhorn blur
    0.005 x the diagonal, varifold/currents width 0.05 x the diagonal.

    Parameters
    ----------
    source, target : napari.layers.Surface or napari.layers.Points
        Shapes of the same dimension, taken in world coordinates.
    model : {"rigid", "similarity", "affine", "lddmm"}, default "rigid"
    loss : {"sinkhorn", "nearest", "varifold", "currents"}, default "sinkhorn"
        Varifolds and currents need two meshes (3D Surface layers).
    n_iter : int, default 50
        Optimiser iterations.
    sigma : float, optional
        LDDMM kernel width, in the units of the shapes.
    name : str, optional
        Name of the new layer (default ``"<source> registered"``).

    Returns
    -------
    data : (data, dict, str)
        The registered source's layer data tuple (world coordinates; red).
    registration : Registration
        The fitted estimator.
    summary : str
        One line: data term before and after, iterations, seconds.

    Raises
    ------
    ValueError
        If ``model`` or ``loss`` is unknown, the layers are the same layer or
        of different dimensions, or the loss cannot compare them.
    """
    import torch

    from ..cli import _diagonal, _loss, _model
    from ..registration import Registration

    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if source is target:
        raise ValueError(f"source and target are the same layer ({source.name!r}): pick two layers")
    source_shape, target_shape = shape_from_layer(source), shape_from_layer(target)
    if source_shape.dim != target_shape.dim:
        raise ValueError(f"source is {source_shape.dim}D but target is {target_shape.dim}D")
    if loss in ("varifold", "currents") and not (source_shape.kind == target_shape.kind == "mesh"
                                                  and source_shape.dim == 3):
        raise ValueError(f"the {loss} loss needs two 3D meshes (Surface layers): use sinkhorn or nearest")
    diagonal = _diagonal(source_shape, target_shape)
    deformation, model_text, weight = _model(
        SimpleNamespace(model=model, sigma=sigma or None, regularization_weight=None), diagonal
    )
    data_term, loss_text = _loss(SimpleNamespace(loss=loss, blur=None, loss_sigma=None), diagonal)
    started = time.perf_counter()
    reg = Registration(deformation, data_term, regularization_weight=weight, n_iter=int(n_iter))
    with torch.no_grad():
        initial = float(data_term(source_shape, target_shape))
    reg.fit(source_shape, target_shape)
    seconds = time.perf_counter() - started
    final = reg.loss_history_["data"][-1]
    ratio = f" ({100 * final / initial:.1f} % of initial)" if initial > 0 else ""
    summary = (f"{model_text} + {loss_text}: data term {initial:.4g} -> {final:.4g}{ratio}, "
               f"{reg.n_iter_} iterations, {seconds:.1f} s")
    data = layer_data(reg.morphed_shape_, name=name or f"{source.name} registered", color=MORPHED_COLOR,
                      landmarks=False)[0]
    return data, reg, summary


class RegistrationWidget(Container):
    """Dock widget: register a source Surface layer onto a target one, add the result as a layer.

    Pick the source and target layers, the deformation model, the data
    term and the number of iterations, then press *Register*. The
    registration runs in a background thread (napari shows an indefinite
    progress bar in its activity dock) unless *run in background* is
    unticked; the registered source is added as a red Surface layer named
    ``"<source> registered"`` and the line below the button gives the data
    term before and after. See :func:`register_layers` for the defaults.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose Surface layers are offered (napari passes it).
    """

    def __init__(self, napari_viewer):
        self._viewer = napari_viewer
        self._worker = None
        self._source = ComboBox(name="source", label="source", choices=self._surfaces)
        self._target = ComboBox(name="target", label="target", choices=self._surfaces)
        self._model = ComboBox(name="model", label="model", choices=MODELS, value="rigid")
        self._loss = ComboBox(name="loss", label="loss", choices=LOSSES, value="sinkhorn")
        self._n_iter = SpinBox(name="n_iter", label="iterations", min=1, max=100_000, value=50)
        self._sigma = FloatSpinBox(name="sigma", label="LDDMM sigma (0: auto)", min=0.0, max=1e9, value=0.0,
                                   step=1.0)
        self._background = CheckBox(name="background", text="run in background", value=True)
        self._button = PushButton(name="register", text="Register")
        self._status = Label(name="status", value="")
        super().__init__(widgets=[self._source, self._target, self._model, self._loss, self._n_iter, self._sigma,
                                  self._background, self._button, self._status])
        self._status.native.setWordWrap(True)  # a long summary wraps instead of widening the dock
        self._button.changed.connect(self._clicked)
        events = napari_viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self.reset_choices)
        self.reset_choices()

    # ------------------------------------------------------------ choices
    def _surfaces(self, widget=None):
        from napari.layers import Surface

        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Surface)]

    def reset_choices(self, *_):
        """Refresh the layer choices; the target defaults to a layer other than the source."""
        super().reset_choices()
        choices = self._surfaces()
        if len(choices) >= 2 and self._target.value is self._source.value:
            self._target.value = next(layer for _, layer in choices if layer is not self._source.value)

    def set_options(self, source=None, target=None, model=None, loss=None, n_iter=None, sigma=None,
                    background=None):
        """Set the widget's fields (the layers themselves, not their names); None leaves a field as it is."""
        for widget, value in ((self._source, source), (self._target, target), (self._model, model),
                              (self._loss, loss), (self._n_iter, n_iter), (self._sigma, sigma),
                              (self._background, background)):
            if value is not None:
                widget.value = value

    # ---------------------------------------------------------------- run
    def _clicked(self, *_):
        self.run()

    def run(self, background=None):
        """Register with the current choices.

        Parameters
        ----------
        background : bool, optional
            Run in a napari thread worker (default: the *run in background*
            box). False runs here and now (scripts, tests).

        Returns
        -------
        list of napari.layers.Layer or napari.qt.threading.FunctionWorker
            The added layer (in a list) when run in the foreground; the
            started worker otherwise (its ``returned`` signal adds the layer).

        Raises
        ------
        ValueError
            In the foreground, if no source or target is chosen, or as
            :func:`register_layers`. In the background, errors are shown in
            the status line and as a napari notification.
        """
        background = self._background.value if background is None else background
        source, target = self._source.value, self._target.value
        if source is None or target is None:
            self._status.value = "pick a source and a target Surface layer"
            if background:
                return None
            raise ValueError("pick a source and a target Surface layer")
        options = dict(model=self._model.value, loss=self._loss.value, n_iter=self._n_iter.value,
                       sigma=self._sigma.value or None)
        self._status.value = f"registering {source.name} onto {target.name}..."
        if not background:
            try:
                result = register_layers(source, target, **options)
            except Exception as error:
                self._status.value = f"failed: {error}"
                raise
            return self._add(result)
        from napari.qt.threading import create_worker

        worker = create_worker(register_layers, source, target, **options,
                               _progress={"total": 0, "desc": f"registering {source.name}"})
        worker.returned.connect(self._add)
        worker.errored.connect(self._failed)
        worker.finished.connect(lambda: setattr(self._button, "enabled", True))
        self._button.enabled = False
        self._worker = worker
        worker.start()
        return worker

    def _add(self, result):
        (data, meta, kind), _, summary = result
        layer = getattr(self._viewer, f"add_{kind}")(data, **meta)
        self._status.value = summary
        return [layer]

    def _failed(self, error):
        self._status.value = f"failed: {error}"
