"""Debiased Sinkhorn divergence between shapes seen as measures: GeomLoss's algorithm.

Dense (backend "torch"): the eps-scaling loop of GeomLoss's "tensorized" backend,
written out here with a faster soft-min (:func:`softmin_dense`) and the target's
debiasing term cached across calls. KeOps (backend "keops"): GeomLoss's "online"
backend itself. Multiscale (backend "multiscale"): GeomLoss's "multiscale" backend
(KeOps on clusters, kernel truncation), for large problems in 1D-3D.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from ..reductions import auto_backend, choose_backend
from .base import Loss

#: Backend "torch" runs :func:`sinkhorn_divergence_dense` below (GeomLoss's "tensorized"
#: algorithm: dense N x M cost matrices in torch); "keops" runs GeomLoss's "online"
#: backend, which recomputes them on the fly with KeOps; "multiscale" runs GeomLoss's
#: "multiscale" backend: the coarse iterations of the eps-scaling loop on clusters
#: (default cluster scale: diameter / (sqrt(D) 2000^(1/D))), then the fine ones with
#: the cluster pairs whose coarse coupling is below exp(-truncate^2 / 2) skipped
#: (``truncate=5``). See :class:`SinkhornLoss` for its accuracy.
_GEOMLOSS_BACKENDS = {"keops": "online", "multiscale": "multiscale"}


#: Lower bound on the shifted exponents of the dense soft-min, see :func:`softmin_dense`.
SOFTMIN_CLAMP = -80.0

#: Number of targets whose debiasing potential ``SinkhornLoss`` keeps (backend "torch"):
#: enough for an atlas of a few shapes, each entry (M, D + 2) values.
TARGET_CACHE_SIZE = 16


class DegenerateMeasureError(ValueError):
    """A shape whose point weights sum to zero or to a non-finite value: it is no probability measure.

    A :class:`ValueError`, as for any invalid input. Its own class lets
    :func:`skshapes.optimization.minimize` tell a degenerate *input* (raised
    at the starting point: re-raised) from a trial point of a line search
    where the deformation collapsed the shape (a similarity whose scale
    underflowed to 0, say: the step is rejected).
    """


def normalized_point_weights(shape, name: str) -> torch.Tensor:
    """``shape.point_weights / shape.point_weights.sum()``: the shape as a probability measure.

    Differentiable w.r.t. the points (vertex areas and segment lengths move
    with them).

    Raises
    ------
    DegenerateMeasureError
        (a ValueError) If the total mass is zero or not finite (a mesh whose
        triangles are all degenerate, a curve whose segments all have zero
        length).
    """
    return _normalized(shape.point_weights, name)


def _normalized(weights: torch.Tensor, name: str) -> torch.Tensor:
    total = weights.sum()
    if not bool(torch.isfinite(total)) or not bool(total > 0):
        raise DegenerateMeasureError(
            f"{name} has total point weight {float(total.detach())}: cannot normalise it into a probability"
        )
    return weights / total


class SinkhornLoss(Loss):
    r"""Debiased Sinkhorn divergence between the point-weight measures of two shapes.

    Each shape becomes a probability measure
    :math:`\alpha = \sum_i a_i \delta_{x_i}`, :math:`\beta = \sum_j b_j \delta_{y_j}`
    with :math:`a = w / \sum w` and :math:`b = v / \sum v`, where :math:`w, v`
    are the :attr:`~skshapes.PolyData.point_weights` (vertex areas on meshes,
    segment lengths on curves, uniform on clouds). The loss is

    .. math::

        S_\varepsilon(\alpha, \beta) = \mathrm{OT}_\varepsilon(\alpha, \beta)
            - \tfrac12 \mathrm{OT}_\varepsilon(\alpha, \alpha)
            - \tfrac12 \mathrm{OT}_\varepsilon(\beta, \beta),

    .. math::

        \mathrm{OT}_\varepsilon(\alpha, \beta) = \min_{\pi \geq 0,\ \pi 1 = a,\ \pi^T 1 = b}
            \sum_{ij} \pi_{ij} C(x_i, y_j) + \varepsilon\, \mathrm{KL}(\pi \,|\, a \otimes b),

    with the ground cost :math:`C(x, y) = \tfrac{1}{p} |x - y|^p` (so
    :math:`\tfrac12 |x - y|^2` for ``p=2``) and temperature
    :math:`\varepsilon = \mathrm{blur}^p`. :math:`S_\varepsilon` is positive,
    zero iff :math:`\alpha = \beta`, and interpolates between optimal transport
    (:math:`\mathrm{blur} \to 0`, e.g. :math:`W_2^2 / 2` for ``p=2``) and a
    kernel norm (MMD, :math:`\mathrm{blur} \to \infty`). With ``reach`` set,
    the marginal constraints become penalties
    :math:`\rho\, \mathrm{KL}(\pi 1 | a) + \rho\, \mathrm{KL}(\pi^T 1 | b)`
    with :math:`\rho = \mathrm{reach}^p` (unbalanced OT).

    Both measures are normalised to a total mass of 1 because balanced OT
    (``reach=None``) only couples measures of equal mass, and two meshes
    almost never have exactly the same area; it also makes the value
    independent of the shapes' areas, so that one weight fits all pairs in a
    registration. With ``reach`` set, the normalised measures are still used:
    mass is then created or destroyed locally (outliers, missing parts)
    rather than to make up for a difference in total area.

    Computed as GeomLoss's debiased Sinkhorn divergence (the algorithm of
    :class:`geomloss.SamplesLoss` with ``"sinkhorn"``, ``debias=True``), with
    :math:`\varepsilon`-scaling: the blur starts at the diameter of the
    pair (rounded up to ``blur / scaling**k``, so that the schedule does not
    move with the extreme points) and is multiplied by ``scaling`` at each
    iteration down to ``blur``, one iteration per blur. The gradient is the
    one of the dual objective at the final potentials (envelope theorem, no
    backpropagation through the loop): exact at convergence, cheap, and
    defined w.r.t. both the points and the weights of both shapes. The loop
    stops after one iteration at ``blur``: against converged entropic OT
    (POT), the value is off by ~1e-6 and the gradient by ~1e-3 (relative) at
    ``scaling=0.999``, ten times more at 0.995 and more again at the default
    0.9: accurate enough to register shapes, not to compute OT to 6 digits.
    With ``reach`` set, the gradient of GeomLoss 0.3.1 is corrected here
    (it comes out scaled by (rho + eps/2) / (rho + eps)).

    On the ``"torch"`` backend the loop runs here (:func:`sinkhorn_divergence_dense`,
    the same operations as GeomLoss's ``"tensorized"`` backend, same values
    and gradients to float rounding) with a clamped log-sum-exp
    (:func:`softmin_dense`), about 3 times faster on a CPU for a skull-sized
    problem; and the target's debiasing term
    :math:`\mathrm{OT}_\varepsilon(\beta, \beta)`, which does not depend on
    the moving shape, is kept from one call to the next while the target
    (points and weights, compared by value) and the blur schedule stay the
    same, as in a registration. The ``"keops"`` backend calls GeomLoss's
    ``"online"`` backend, ``"multiscale"`` GeomLoss's ``"multiscale"``
    backend: it clusters both clouds, runs the coarse iterations of the
    loop on the clusters and skips, at the fine scale, the pairs of
    clusters that the coarse solution says do not interact (kernel
    truncation); it starts its schedule at the bounding box's diagonal
    (GeomLoss's default) rather than at the rounded diameter of the other
    backends, which would make its clusters coarser and its fine
    iterations start at a larger blur (2-3 times slower). Its value and
    gradient are not those of the other backends to round-off, but
    within their own distance to converged entropic OT: two 3D Gaussian
    clouds of 1,000 points one unit apart, blur 0.05, against
    ``scaling=0.995``: at ``scaling=0.8`` the dense loop
    is off by 9.8e-3 (value) and 0.21 (gradient, relative norm), the
    multiscale backend by 7.7e-3 and 0.19; at 0.95, both by 1.1e-3 and
    0.10; multiscale against online at 0.8: 2e-3 (value), 5-9e-2
    (gradient) for 1,000-2,000 points. Speed on 2 CPU cores
    (``benchmarks/RESULTS.md``, sections "Backend thresholds" and
    "Scaling"): at 5,000 points (those Gaussian clouds, blur 0.05,
    scaling 0.8) dense 11 s, multiscale 14 s, online 35 s; at 10,000
    points in the unit cube (blur 0.01, scaling 0.5) dense 37 s and
    3.6 GB, online 98 s, multiscale 8 s and 0.23 GB; 1e5 points in
    11 minutes, where the online backend would take hours.

    Points that are not finite (only a deformation can produce them, e.g.
    an optimiser's trial step that overflowed) give a NaN value, not an
    error, so that the optimiser can reject the step.

    Parameters
    ----------
    blur : float
        Blur scale :math:`\varepsilon^{1/p}`, in the units of the points
        (mm for the bundled faces): details finer than ``blur`` are
        smoothed out. Must be positive. The value of the loss is in units^p.
    reach : float or None
        Largest distance over which mass is transported rather than
        created or destroyed, in the units of the points; ``None`` (default)
        for balanced OT. Must be positive when given.
    scaling : float
        Ratio between successive blurs of the :math:`\varepsilon`-scaling
        loop, in (0, 1): 0.5 is fast and rough, 0.9 (default) a good
        trade-off, above 0.95 accurate and slow.
    p : {1, 2}
        Exponent of the ground cost :math:`\tfrac1p |x - y|^p`.
    backend : {"auto", "keops", "torch", "multiscale"}
        Resolved by :func:`skshapes.reductions.choose_backend` for the
        N x M problem (operation ``"sinkhorn"``): ``"torch"`` runs the
        dense loop of this module (GeomLoss's ``"tensorized"`` algorithm:
        N x M, M x N, N x N and M x M cost matrices), ``"keops"``
        GeomLoss's ``"online"`` backend (KeOps, no N x M matrix in memory),
        ``"multiscale"`` GeomLoss's ``"multiscale"`` backend (KeOps on
        clusters, D <= 3; see above). ``"auto"`` follows the ``"sinkhorn"``
        rules of :data:`skshapes.reductions.THRESHOLDS` (point pairs
        N x M; on the CPU: dense torch below 2.5e7 pairs, i.e. 5,000 x
        5,000 points, where its matrices stay under 1 GB; above,
        multiscale in 1D-3D, online KeOps otherwise), the multiscale
        backend only for ``p=2`` (as GeomLoss's own ``"auto"``).

    Shapes
    ------
    - ``shape_a.points``: (N, D), ``shape_b.points``: (M, D), D in {2, 3}.
    - Output: 0-dim tensor, dtype and device of the points, differentiable
      w.r.t. both shapes' points.

    Raises
    ------
    ValueError
        At call time: if ``blur`` or ``reach`` is not positive and finite,
        ``scaling`` not in (0, 1), ``p`` not 1 or 2, ``backend`` unknown,
        a shape has zero total weight (:class:`DegenerateMeasureError`), or
        the shapes differ in dimension, device or dtype.
    TypeError
        At call time: if an argument is not a :class:`~skshapes.PolyData`,
        or ``blur``, ``reach``, ``scaling`` or ``p`` is not a number.
    ImportError
        If ``backend="keops"`` or ``"multiscale"`` and pykeops does not
        work here.

    References
    ----------
    J. Feydy, T. Séjourné, F.-X. Vialard, S. Amari, A. Trouvé, G. Peyré,
    "Interpolating between Optimal Transport and MMD using Sinkhorn
    Divergences", AISTATS 2019.

    T. Séjourné, J. Feydy, F.-X. Vialard, A. Trouvé, G. Peyré, "Sinkhorn
    Divergences for Unbalanced Optimal Transport", arXiv:1910.12958, 2019
    (the ``reach`` parameter).

    Examples
    --------
    >>> import torch, skshapes as sks
    >>> x = torch.rand(100, 3)
    >>> loss = sks.SinkhornLoss(blur=0.01)
    >>> value = loss(sks.PolyData(x), sks.PolyData(x + torch.tensor([0.1, 0.0, 0.0])))
    >>> round(float(value), 4)  # |t|^2 / 2 for a translation t
    0.005
    """

    def __init__(self, blur=1.0, reach=None, scaling=0.9, p=2, backend="auto"):
        self.blur = blur
        self.reach = reach
        self.scaling = scaling
        self.p = p
        self.backend = backend

    def _check_parameters(self) -> None:
        for name in ("blur", "reach", "scaling", "p"):
            value = getattr(self, name)
            if not (_real(value) or (name == "reach" and value is None)):
                raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        if not _positive_finite(self.blur):
            raise ValueError(f"blur must be a positive finite number (units of the points), got {self.blur!r}")
        if self.reach is not None and not _positive_finite(self.reach):
            raise ValueError(f"reach must be None or a positive finite number, got {self.reach!r}")
        if not (_real(self.scaling) and 0 < self.scaling < 1):
            raise ValueError(f"scaling must be in (0, 1), got {self.scaling!r}")
        if self.p not in (1, 2) or isinstance(self.p, bool):
            raise ValueError(f"p must be 1 or 2, got {self.p!r}")

    def compute(self, shape_a, shape_b) -> torch.Tensor:
        self._check_parameters()
        x, y = shape_a.points, shape_b.points
        backend = choose_backend(self.backend, x.shape[0], y.shape[0], "sinkhorn", device=x.device, dim=x.shape[1])
        if backend == "multiscale" and self.backend == "auto" and self.p != 2:
            # GeomLoss's own "auto" keeps its multiscale scheme for p = 2: follow the next rule.
            backend = auto_backend(
                "sinkhorn", x.shape[0], y.shape[0], x.device.type, x.shape[1], exclude=("multiscale",)
            )
        weights_a, weights_b = shape_a.point_weights, shape_b.point_weights
        if not _all_finite(x, y, weights_a.sum(), weights_b.sum()):
            # PolyData validates the points it is built from, so only a deformation
            # gets here: an optimiser's trial step that overflowed (a huge
            # log-scale, say). Give NaN, as a torch function would, rather than
            # an error, so that the optimiser can reject the step
            # (skshapes.optimization treats a non-finite objective as +inf).
            # A zero total weight (a degenerate input shape) still raises.
            return _nan_like(x, y)
        a = _normalized(weights_a, "shape_a")
        b = _normalized(weights_b, "shape_b")
        blur, scaling = float(self.blur), float(self.scaling)
        reach = None if self.reach is None else float(self.reach)
        diameter = _schedule_diameter(x, y, blur, scaling)
        if backend == "multiscale":
            # GeomLoss derives the cluster scale and the coarse-to-fine jump of its multiscale
            # loop from the diameter: the rounded one (up to 1/scaling larger) keeps more
            # pairs of clusters at the fine scale, 2.8 times slower at 3e4 points with
            # scaling 0.5. That loop moves in steps with its clusters anyway: give it the
            # bounding box's own diagonal (at least blur), as GeomLoss's default does.
            diameter = max(_bounding_diameter(x, y), blur)
        grad_enabled = torch.is_grad_enabled()
        if backend == "torch":
            value = self._sinkhorn_dense(a, x, b, y, blur, reach, scaling, diameter)
        else:
            from geomloss import SamplesLoss

            samples_loss = SamplesLoss(
                "sinkhorn", p=self.p, blur=blur, reach=reach, scaling=scaling, diameter=diameter, debias=True,
                backend=_GEOMLOSS_BACKENDS[backend],
            )
            # GeomLoss switches autograd off for its loop and back *on* when it
            # returns, whatever the caller's mode was: restore the caller's mode,
            # so that a call under torch.no_grad() leaves no_grad in force.
            with torch.set_grad_enabled(grad_enabled):
                value = samples_loss(a, x.contiguous(), b, y.contiguous())
        if not grad_enabled:
            return value.detach()
        if reach is not None:
            # Unbalanced case: GeomLoss (0.3.1, ``UnbalancedWeight`` in
            # geomloss/_legacy/sinkhorn_divergence.py) weighs the dual terms by
            # rho + eps/2 in the value, as it should (Sejourne et al. 2019,
            # Prop. 12), and means to weigh them by rho + eps in the gradient
            # through an ``nn.Module.backward`` method, which autograd never
            # calls: every gradient (points and weights) comes out scaled by
            # (rho + eps/2) / (rho + eps), e.g. 10% too small at reach = 2 blur.
            # :func:`sinkhorn_divergence_dense` reproduces GeomLoss's value and
            # gradient; rescale the gradient of both backends here.
            # tests/test_losses.py checks the result against POT.
            eps, rho = blur**self.p, reach**self.p
            value = _ScaleGradient.apply(value, (rho + eps) / (rho + eps / 2))
        return value

    def _sinkhorn_dense(self, a, x, b, y, blur, reach, scaling, diameter):
        """Backend "torch": :func:`sinkhorn_divergence_dense`, with the target's self-transport cached.

        The debiasing potential of OT(beta, beta) depends only on the target
        (points, weights) and on the blur schedule. A registration evaluates the
        loss against one fixed target many times (an atlas against a few), and
        the schedule (see :func:`_schedule_diameter`) changes only when the
        pair's diameter crosses a point of the grid ``blur / scaling**k``. The
        potentials of the last :data:`TARGET_CACHE_SIZE` targets are kept and
        reused when the target and the schedule are the same (compared by
        value), which saves one of the four dense soft-mins per iteration and
        the M x M cost matrix. Only a target that autograd does not track is
        cached (its potential then carries no gradient).
        """
        eps_list = epsilon_schedule(self.p, diameter, blur, scaling)
        rho = None if reach is None else reach**self.p
        cacheable = not (torch.is_grad_enabled() and (y.requires_grad or b.requires_grad))
        key = (self.p, rho, tuple(eps_list))
        # A tuple of immutable entries, read once and replaced whole: threads sharing
        # this loss (joblib's threading backend) may lose an entry, never mix two.
        entries = self.__dict__.get("_target_cache", ()) if cacheable else ()
        g_bb = next(
            (g for k, cached_y, cached_b, g in entries if k == key and _same(cached_y, y) and _same(cached_b, b)),
            None,
        )
        if g_bb is None:
            g_bb = self_transport_potential(b, y, self.p, eps_list, rho)
            if cacheable:
                entry = (key, y.detach().clone(), b.detach().clone(), g_bb.detach())
                self._target_cache = (entry, *entries[: TARGET_CACHE_SIZE - 1])
        return sinkhorn_divergence_dense(a, x, b, y, self.p, eps_list, rho, g_bb=g_bb)

    def __getstate__(self):
        # The cached target potential is a speed-up, not a parameter: not pickled
        # (joblib workers, checkpoints), not copied by scikit-learn's clone.
        state = dict(self.__dict__)
        state.pop("_target_cache", None)
        return state


class _ScaleGradient(torch.autograd.Function):
    """Identity in the forward pass, gradient multiplied by ``factor`` in the backward pass."""

    @staticmethod
    def forward(ctx, value, factor):
        ctx.factor = factor
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def _bounding_diameter(x, y) -> float:
    """Diagonal of the bounding box of both point clouds (GeomLoss's default diameter)."""
    with torch.no_grad():
        low = torch.minimum(x.min(dim=0).values, y.min(dim=0).values)
        high = torch.maximum(x.max(dim=0).values, y.max(dim=0).values)
        return float((high - low).norm())


def _schedule_diameter(x, y, blur: float, scaling: float) -> float:
    """First blur of the eps-scaling schedule: the pair's diameter, rounded up to ``blur / scaling**k``.

    GeomLoss starts its schedule at the diagonal of the bounding box of both
    clouds (an upper bound on |x_i - y_j|), then divides the blur by
    ``scaling`` at each iteration down to ``blur``. Two fixes, with as many
    iterations as GeomLoss's own estimate gives:

    - every intermediate blur depends on the diameter, hence on the extreme
      points; as the loop stops before full convergence, the value then
      varies with them along a saw-tooth (a jump each time the number of
      iterations changes, a slope in between) whose slope, for unbalanced OT,
      does not shrink as ``scaling -> 1``: finite differences at the points
      on the bounding box were 3% off the true gradient. With the diameter
      on the grid ``blur / scaling**k``, the schedule is piecewise constant
      in the points, and the value and its gradient agree (which line
      searches rely on);
    - when every point coincides the diameter is 0 and GeomLoss's schedule,
      ``np.arange(log 0, ...)``, raises: here the schedule starts at ``blur``.
    """
    diameter = _bounding_diameter(x, y)
    if diameter <= blur:
        return blur
    # GeomLoss runs ceil(log(diameter / blur) / log(1 / scaling)) intermediate
    # blurs; the grid point blur / scaling**steps keeps exactly that number (the
    # factor 1 - 1e-10 keeps np.arange from adding one on a rounding error).
    steps = math.ceil(math.log(diameter / blur) / -math.log(scaling) - 1e-9)
    return blur * scaling ** (-steps) * (1 - 1e-10)


# ----------------------------------------------------------------------------
# Dense ("tensorized") Sinkhorn divergence. GeomLoss 0.3.1's tensorized backend
# (``sinkhorn_tensorized`` and ``sinkhorn_loop`` in geomloss/_legacy/) computes
# the same quantities with torch's ``logsumexp``; it offers no way to pass it
# another soft-min, so the loop is written out here, step for step (up to the
# rounding of h - C / eps): same epsilon schedule, same averaged symmetric updates, same final
# extrapolation with autograd on (the gradient is that of the dual objective at
# the final potentials), same ``blur``, ``reach``, ``scaling`` and debiasing.
# tests/test_sinkhorn_softmin.py checks values and gradients against
# ``geomloss.SamplesLoss(backend="tensorized")``.
# ----------------------------------------------------------------------------
def softmin_dense(eps: float, cost: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    r"""The soft-min :math:`f_i = -\varepsilon \log \sum_j \exp(h_j - C_{ij} / \varepsilon)`, dense.

    Computed as :math:`-\varepsilon\,(m_i + \log \sum_j \exp(\max(z_{ij} - m_i, -80)))`
    with :math:`z_{ij} = h_j - C_{ij}/\varepsilon` and :math:`m_i = \max_j z_{ij}`:
    the log-sum-exp of ``torch.logsumexp``, except that the shifted exponents
    are clamped at ``SOFTMIN_CLAMP = -80``. Why: torch's float32 ``exp`` on the
    CPU takes a path about 10 times slower for arguments below about -87, where
    the result underflows, and once :math:`\varepsilon` is small most entries
    of a Sinkhorn kernel are there (``torch.logsumexp`` on a 150 x 200 matrix:
    0.64 ms against 0.07 ms clamped, measured for ``benchmarks/bench_lddmm.py``).
    The value does not change: a clamped term is below
    :math:`e^{-80} \approx 1.8 \cdot 10^{-35}` times the largest one (which is
    1), far below float32 and float64 resolution, and its gradient is 0
    instead of less than :math:`e^{-80}` times the largest.

    Parameters
    ----------
    eps : float
        Temperature :math:`\varepsilon > 0`, in units of the cost.
    cost : torch.Tensor, shape (N, M)
        Cost matrix :math:`C_{ij}`.
    h : torch.Tensor, shape (M,)
        Log-weights plus scaled dual potential, :math:`\log \beta_j + g_j / \varepsilon`.

    Returns
    -------
    torch.Tensor, shape (N,)
        Differentiable w.r.t. ``cost`` and ``h`` (softmax weights, as
        ``torch.logsumexp``).

    Notes
    -----
    When autograd does not track the call (the Sinkhorn iterations), the
    N x M work happens in place in one buffer: fresh N x M temporaries at
    each step cost more than the arithmetic from about 1,000 points on
    (2,000 x 2,000: 7 ms against 54 ms of CPU here).
    """
    z = torch.add(h[None, :], cost, alpha=-1 / eps)  # h_j - C_ij / eps
    if torch.is_grad_enabled() and z.requires_grad:
        top = z.detach().amax(dim=1, keepdim=True)
        return -eps * ((z - top).clamp_min(SOFTMIN_CLAMP).exp().sum(dim=1).log() + top[:, 0])
    top = z.amax(dim=1, keepdim=True)
    return -eps * (z.sub_(top).clamp_min_(SOFTMIN_CLAMP).exp_().sum(dim=1).log_() + top[:, 0])


def epsilon_schedule(p: int, diameter: float, blur: float, scaling: float) -> list:
    """Temperatures of the eps-scaling loop: ``diameter**p``, then ``blur**p`` divided by ``scaling**p`` steps.

    GeomLoss's schedule: ``diameter**p``, every ``exp(e)`` for ``e`` in
    ``arange(p log diameter, p log blur, p log scaling)``, then ``blur**p``
    (one Sinkhorn iteration per temperature).
    """
    steps = np.arange(p * np.log(diameter), p * np.log(blur), p * np.log(scaling))
    return [float(diameter**p)] + [float(np.exp(e)) for e in steps] + [float(blur**p)]


def cost_matrix(x: torch.Tensor, y: torch.Tensor, p: int) -> torch.Tensor:
    r"""Dense ground cost :math:`C_{ij} = \tfrac1p |x_i - y_j|^p`, shape (N, M), differentiable w.r.t. ``x`` only.

    As GeomLoss builds it: :math:`|x|^2 - 2 x \cdot y + |y|^2` (one matrix
    product), halved for ``p=2``, square root (of at least 1e-8) for ``p=1``.
    ``y`` is detached: in the Sinkhorn loop each point cloud gets its
    gradient from the cost matrices in which it comes first.
    """
    y = y.detach()
    squared = (x * x).sum(-1)[:, None] - 2 * (x @ y.T) + (y * y).sum(-1)[None, :]
    return squared / 2 if p == 2 else squared.clamp_min(1e-8).sqrt()


def _log_weights(a: torch.Tensor) -> torch.Tensor:
    """``log a`` without autograd, with -100000 where ``a <= 0`` (GeomLoss's ``log_weights``)."""
    with torch.no_grad():
        log_a = a.log()
        log_a[a <= 0] = -100000.0
    return log_a


def _dampening(eps: float, rho: float | None) -> float:
    """Factor ``1 / (1 + eps / rho)`` of unbalanced OT (``rho = reach**p``), 1 when balanced."""
    return 1 if rho is None else 1 / (1 + eps / rho)


def self_transport_potential(a: torch.Tensor, x: torch.Tensor, p: int, eps_list: list, rho) -> torch.Tensor:
    r"""The dual potential of :math:`\mathrm{OT}_\varepsilon(\alpha, \alpha)`, for the debiasing term.

    GeomLoss's symmetric update :math:`f \leftarrow \tfrac12 (f + \text{softmin}(f))`
    at each temperature of ``eps_list``, without autograd, then one more
    soft-min with autograd (w.r.t. ``x``, through the cost matrix).

    Parameters
    ----------
    a : torch.Tensor, shape (N,)
        Weights of the measure (total 1).
    x : torch.Tensor, shape (N, D)
        Its points.
    p : {1, 2}
        Exponent of the cost.
    eps_list : list of float
        Temperatures (:func:`epsilon_schedule`), the last one
        :math:`\varepsilon = \mathrm{blur}^p`.
    rho : float or None
        :math:`\mathrm{reach}^p`, or None for balanced OT.

    Returns
    -------
    torch.Tensor, shape (N,)
    """
    log_a, cost = _log_weights(a), cost_matrix(x, x, p)
    with torch.no_grad():
        eps = eps_list[0]
        f = _dampening(eps, rho) * softmin_dense(eps, cost, log_a)
        for eps in eps_list:
            f = 0.5 * (f + _dampening(eps, rho) * softmin_dense(eps, cost, log_a + f / eps))
    return _dampening(eps, rho) * softmin_dense(eps, cost, (log_a + f / eps).detach())


def sinkhorn_divergence_dense(a, x, b, y, p: int, eps_list: list, rho, g_bb=None) -> torch.Tensor:
    r"""Debiased Sinkhorn divergence :math:`S_\varepsilon(\alpha, \beta)` with dense cost matrices.

    The value and gradient of ``geomloss.SamplesLoss("sinkhorn", p=p,
    debias=True, backend="tensorized")`` (GeomLoss 0.3.1, including its
    unbalanced gradient, see :meth:`SinkhornLoss.compute`), with the clamped
    :func:`softmin_dense`. Four problems share the temperatures ``eps_list``:
    :math:`\alpha \leftrightarrow \beta` (potentials ``f_ba`` on ``x`` and
    ``g_ab`` on ``y``, updated together), and the debiasing
    :math:`\alpha \leftrightarrow \alpha`, :math:`\beta \leftrightarrow \beta`
    (:func:`self_transport_potential`).

    Parameters
    ----------
    a, b : torch.Tensor, shapes (N,) and (M,)
        Weights of the two measures (total 1 each when balanced).
    x, y : torch.Tensor, shapes (N, D) and (M, D)
        Their points.
    p : {1, 2}
        Exponent of the cost :math:`\tfrac1p |x - y|^p`.
    eps_list : list of float
        Temperatures (:func:`epsilon_schedule`), the last one
        :math:`\varepsilon = \mathrm{blur}^p`.
    rho : float or None
        :math:`\mathrm{reach}^p`, or None for balanced OT.
    g_bb : torch.Tensor, shape (M,), optional
        ``self_transport_potential(b, y, p, eps_list, rho)``, if already known.

    Returns
    -------
    torch.Tensor
        0-dim, differentiable w.r.t. ``a``, ``x``, ``b`` and ``y``.
    """
    log_a, log_b = _log_weights(a), _log_weights(b)
    cost_xy, cost_yx = cost_matrix(x, y, p), cost_matrix(y, x, p)
    with torch.no_grad():
        eps = eps_list[0]
        damping = _dampening(eps, rho)
        g_ab = damping * softmin_dense(eps, cost_yx, log_a)
        f_ba = damping * softmin_dense(eps, cost_xy, log_b)
        for eps in eps_list:
            damping = _dampening(eps, rho)
            ft_ba = damping * softmin_dense(eps, cost_xy, log_b + g_ab / eps)
            gt_ab = damping * softmin_dense(eps, cost_yx, log_a + f_ba / eps)
            f_ba, g_ab = 0.5 * (f_ba + ft_ba), 0.5 * (g_ab + gt_ab)
    # Last extrapolation with autograd: the gradient of the dual objective at these potentials.
    f_ba, g_ab = (
        damping * softmin_dense(eps, cost_xy, (log_b + g_ab / eps).detach()),
        damping * softmin_dense(eps, cost_yx, (log_a + f_ba / eps).detach()),
    )
    f_aa = self_transport_potential(a, x, p, eps_list, rho)
    if g_bb is None:
        g_bb = self_transport_potential(b, y, p, eps_list, rho)
    if rho is None:
        return (a * (f_ba - f_aa)).sum() + (b * (g_ab - g_bb)).sum()
    weight = rho + eps / 2
    return (a * (weight * ((-f_aa / rho).exp() - (-f_ba / rho).exp()))).sum() + (
        b * (weight * ((-g_bb / rho).exp() - (-g_ab / rho).exp()))
    ).sum()


def _all_finite(*tensors) -> bool:
    """Whether every entry of every tensor is finite (one device synchronisation)."""
    return bool(torch.stack([torch.isfinite(t.detach()).all() for t in tensors]).all())


def _nan_like(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A NaN 0-dim tensor, attached to the autograd graphs of ``x`` and ``y`` (NaN gradients)."""
    value = (x.sum() + y.sum()) * math.nan
    return value if torch.is_grad_enabled() else value.detach()


def _same(cached: torch.Tensor, tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` has the shape, dtype, device and values of ``cached``."""
    return (
        cached.shape == tensor.shape and cached.dtype == tensor.dtype and cached.device == tensor.device
        and torch.equal(cached, tensor.detach())
    )


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive_finite(value) -> bool:
    return _real(value) and 0 < value < math.inf
