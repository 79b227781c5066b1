"""Statistics on shape populations: atlas (Fréchet mean), tangent PCA, geodesic regression, parallel transport,
Procrustes analysis and Wasserstein barycentres."""

from .atlas import Atlas
from .barycenter import WassersteinBarycenter
from .geodesic_regression import GeodesicRegression
from .glm import PermutationGLM
from .procrustes import GeneralizedProcrustes
from .shooting import shoot
from .tangent_pca import TangentPCA
from .transport import parallel_transport

__all__ = ["Atlas", "GeodesicRegression", "PermutationGLM", "GeneralizedProcrustes", "TangentPCA", "WassersteinBarycenter", "parallel_transport", "shoot"]
