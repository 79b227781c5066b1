"""Figures of shapes and registrations (pyvista off-screen for 3D, matplotlib for 2D), GIFs, napari.

pyvista and matplotlib are imported when a figure is drawn, not at import;
napari is never imported here (:func:`add_to_napari` takes the viewer you
made). The napari plugin (a reader for mesh files and a registration dock
widget) lives in ``skshapes.viz._napari``, declared by ``napari.yaml``.
"""

from .animation import animate, geodesic_path
from .heatmap import plot_heatmap
from .layers import add_to_napari, layer_data, shape_from_layer
from .plotting import MORPHED_COLOR, PALETTE, SOURCE_COLOR, TARGET_COLOR, plot, plot_registration

__all__ = [
    "MORPHED_COLOR",
    "PALETTE",
    "SOURCE_COLOR",
    "TARGET_COLOR",
    "add_to_napari",
    "animate",
    "geodesic_path",
    "layer_data",
    "plot",
    "plot_heatmap",
    "plot_registration",
    "shape_from_layer",
]
