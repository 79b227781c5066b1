"""Figures of shapes and registrations (pyvista off-screen for 3D, matplotlib for 2D).

pyvista and matplotlib are imported when a figure is drawn, not at import.
"""

from .plotting import MORPHED_COLOR, PALETTE, SOURCE_COLOR, TARGET_COLOR, plot, plot_registration

__all__ = ["MORPHED_COLOR", "PALETTE", "SOURCE_COLOR", "TARGET_COLOR", "plot", "plot_registration"]
