"""dMaSIF's quasi-geodesic convolution on oriented point clouds (Sverrisson et al., CVPR 2021)."""

from __future__ import annotations

from numbers import Real

import torch
from torch import nn

from ..reductions.batched import check_batch, check_points
from ..reductions.quasi_geodesic import quasi_geodesic_filter, quasi_geodesic_gradient
from .knn_conv import _check_positive_int

#: Regularisation of the norm of the tangent gradient that orients the frames (units of the window radius).
FRAME_EPSILON = 1e-6


class QuasiGeodesicConv(nn.Module):
    r"""Quasi-geodesic convolution with learned tangent frames, from dMaSIF [1]_.

    For points :math:`p_i` with unit normals :math:`n_i` and features
    :math:`x_i \in \mathbb{R}^C`, and :math:`\sigma` = ``radius``:

    1. **Window.** :math:`w_{ij} = \exp(-d_{ij}^2 / 2\sigma^2)` with the
       quasi-geodesic distance
       :math:`d_{ij} = \|p_i - p_j\| \, (2 - \langle n_i, n_j \rangle)`,
       which keeps points of a smooth patch (aligned normals) at about their
       Euclidean distance and pushes away points with opposite normals
       (the other side of a thin sheet).
    2. **Orientation.** A learned scalar potential
       :math:`q_i = \mathrm{MLP}_q(x_i)` (``Linear(C, H) - ReLU - Linear(H, 1)``)
       has the window-smoothed gradient
       :math:`g_i = \sum_j w_{ij} (q_j - q_i)(p_j - p_i) / \sigma`; its
       tangential part :math:`t_i = g_i - \langle g_i, n_i \rangle n_i` gives
       :math:`u_i = t_i / \sqrt{\|t_i\|^2 + \varepsilon^2}`
       (:data:`FRAME_EPSILON`, which keeps the frame differentiable where
       the gradient vanishes; there the frame degenerates to the normal
       alone), and :math:`v_i = n_i \times u_i`. The frame
       :math:`(u_i, v_i, n_i)` rotates with the surface, so the layer needs
       no arbitrary choice of tangent directions.
    3. **Filter.** The neighbour's position in the frame of :math:`p_i`,
       :math:`z_{ij} = [\langle u_i, p_j - p_i \rangle, \langle v_i, p_j - p_i \rangle,
       \langle n_i, p_j - p_i \rangle] / \sigma`, goes through a
       one-hidden-layer MLP :math:`f(z) = W_2\, \mathrm{ReLU}(W_1 z + b_1) + b_2`
       (3 -> H -> C), which modulates the neighbour's features channel-wise:

       .. math::

           a_i = \sum_j w_{ij}\, f(z_{ij}) \odot x_j, \qquad
           \text{output}_i = W_3\, a_i + b_3 \quad (\text{Linear}(C, \text{out})).

    The sum runs over *all* points of the cloud of :math:`i` (not a fixed
    neighbourhood); on KeOps it is one symbolic reduction with a hand-written
    backward pass (:func:`skshapes.reductions.quasi_geodesic_filter`),
    memory O(N C H), never N x N. Normalisations, activations and
    residual connections around the convolution, as in dMaSIF's full
    network, are left to the model that uses this layer.

    The output is invariant to translations, and to rotations of the points
    and normals together when the features ``x`` are (for example distances
    or curvatures), since every quantity above is computed in the local
    frames; it is not invariant to reflections (they flip :math:`v_i`). It
    is equivariant to permutations of the points.

    Parameters
    ----------
    in_channels : int
        Number C of input features per point.
    out_channels : int
        Number of output features per point.
    radius : float
        Width :math:`\sigma` of the window, in the units of ``pos``.
    hidden_channels : int
        Width H of the hidden layers of the filter and of the potential
        (default 8: the KeOps formulas grow with H and C, and their cost per
        pair is about 5 C H multiply-adds for a forward and backward pass).
    backend : {"auto", "keops", "torch"}
        For the two pair reductions, see
        :func:`skshapes.reductions.choose_backend` (``"auto"``: KeOps from
        :data:`~skshapes.reductions.KEOPS_MIN_PAIRS` pairs ``sum_b N_b^2``).
        The torch path builds (rows x N_b x (H + C)) blocks, all kept for the
        backward pass: memory O(N_b^2 (H + C)), for small clouds only. The
        KeOps path is differentiable once (no ``create_graph=True``).

    Shapes
    ------
    - x: (N, C)
    - pos: (N, 3)
    - normals: (N, 3), unit normals (renormalised here)
    - batch: (N,) int64, sorted, optional (PyG convention)
    - output: (N, out_channels), dtype and device of ``pos``

    Raises
    ------
    TypeError, ValueError
        At construction, on a non-integer size or a radius that is not a
        positive finite number; in :meth:`forward`, on inputs of the wrong
        type, shape, dtype or device.

    References
    ----------
    .. [1] F. Sverrisson, J. Feydy, B. E. Correia, M. M. Bronstein, "Fast
       end-to-end learning on protein surfaces", CVPR 2021. This is an
       implementation from the paper's description, not from its code.

    Examples
    --------
    >>> conv = QuasiGeodesicConv(4, 8, radius=0.5)
    >>> pos = torch.randn(100, 3)
    >>> normals = torch.nn.functional.normalize(pos, dim=1)
    >>> conv(torch.randn(100, 4), pos, normals).shape
    torch.Size([100, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        radius: float,
        hidden_channels: int = 8,
        backend: str = "auto",
    ):
        super().__init__()
        _check_positive_int(in_channels, "in_channels")
        _check_positive_int(out_channels, "out_channels")
        _check_positive_int(hidden_channels, "hidden_channels")
        if isinstance(radius, bool) or not isinstance(radius, Real) or not 0 < radius < float("inf"):
            raise ValueError(f"radius must be a positive finite number, got {radius!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.radius = radius
        self.hidden_channels = hidden_channels
        self.backend = backend
        self.potential = nn.Sequential(
            nn.Linear(in_channels, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, 1)
        )
        self.filter_hidden = nn.Linear(3, hidden_channels)
        self.filter_output = nn.Linear(hidden_channels, in_channels)
        self.linear = nn.Linear(in_channels, out_channels)

    def frames(self, x, pos, normals, batch=None) -> torch.Tensor:
        """The local frames, rows ``(u_i, v_i, n_i)``: shape (N, 3, 3); arguments as in :meth:`forward`."""
        x, pos, normals, batch = self._check(x, pos, normals, batch)
        return self._frames(x, pos / self.radius, torch.nn.functional.normalize(normals, dim=1), batch)

    def _frames(self, x, points, normals, batch):
        gradient = quasi_geodesic_gradient(points, normals, self.potential(x), batch, backend=self.backend)
        tangent = gradient - (gradient * normals).sum(-1, keepdim=True) * normals
        u = tangent / ((tangent**2).sum(-1, keepdim=True) + FRAME_EPSILON**2).sqrt()
        v = torch.linalg.cross(normals, u, dim=-1)
        return torch.stack([u, v, normals], dim=1)

    def forward(self, x, pos, normals, batch=None) -> torch.Tensor:
        """Convolve the features ``x`` over the surface; see the class docstring for shapes."""
        x, pos, normals, batch = self._check(x, pos, normals, batch)
        points = pos / self.radius
        normals = torch.nn.functional.normalize(normals, dim=1)
        frames = self._frames(x, points, normals, batch)
        # W_1 z_ij = W_1 F_i (y_j - y_i) with y = p / sigma: fold the frame into the first layer.
        local_weights = torch.einsum("hk,nkd->nhd", self.filter_hidden.weight, frames)
        convolved = quasi_geodesic_filter(
            points,
            normals,
            x,
            local_weights,
            self.filter_hidden.bias,
            self.filter_output.weight,
            self.filter_output.bias,
            batch,
            backend=self.backend,
        )
        return self.linear(convolved)

    def _check(self, x, pos, normals, batch):
        check_points(pos, "pos")
        check_points(normals, "normals")
        check_points(x, "x")
        n = pos.shape[0]
        if pos.shape[1] != 3 or normals.shape != pos.shape:
            raise ValueError(f"pos and normals must both be (N, 3), got {tuple(pos.shape)} and {tuple(normals.shape)}")
        if x.shape != (n, self.in_channels):
            raise ValueError(f"x must be ({n}, {self.in_channels}), got {tuple(x.shape)}")
        for name, array in (("x", x), ("normals", normals)):
            if array.device != pos.device or array.dtype != pos.dtype:
                raise ValueError(
                    f"{name} and pos differ in device or dtype ({array.device}, {array.dtype} vs "
                    f"{pos.device}, {pos.dtype})"
                )
        return x, pos, normals, check_batch(batch, n, pos.device)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, radius={self.radius}, "
            f"hidden_channels={self.hidden_channels}, backend={self.backend!r}"
        )
