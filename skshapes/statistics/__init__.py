"""Statistics on shape populations: atlas (Fréchet mean), tangent PCA, geodesic regression, parallel transport,
Procrustes analysis and Wasserstein barycentres."""

from .atlas import Atlas

__all__ = ["Atlas"]
