"""Shooting: turn a momentum (a tangent vector at a template) into a shape."""

from __future__ import annotations

import torch

from ..deformations import DeformationModel
from ._momenta import check_momentum_shape, check_polydata, to_tensor


def shoot(template, momentum, model, return_path=False):
    r"""The shape reached by shooting ``momentum`` from ``template``: the exponential map.

    A thin wrapper of ``model.morph(template, momentum)`` that accepts numpy
    arrays and checks the momentum against the model, for turning the
    outputs of tangent-space statistics into shapes: a principal mode at
    :math:`\pm 2` standard deviations,
    ``shoot(template, pca.mean_ + 2 * sqrt(pca.explained_variance_[k]) * pca.components_[k], model)``,
    an atlas's momenta, a transported momentum (:func:`parallel_transport`).
    For :class:`~skshapes.LDDMM` this integrates the geodesic equations
    from the control points :math:`q_0` = ``model.control_points_of(template)``
    with the initial momentum :math:`p_0` = ``momentum`` over :math:`t \in [0, 1]`
    and carries the template's points with the flow.

    Parameters
    ----------
    template : PolyData
        The shape at time 0 (N points, D = 2 or 3).
    momentum : torch.Tensor or numpy.ndarray, shape ``model.parameter_shape(template)``, (C, D)
        The initial momentum (for LDDMM, one vector per control point, in
        the units of the points per unit time), e.g. a row of an atlas's
        ``momenta_`` or a combination of :class:`TangentPCA` components.
        Any real dtype; it is converted to the dtype and device of
        ``template``. A tensor that requires gradients keeps its graph, so
        the output is differentiable w.r.t. it. Never modified.
    model : DeformationModel
        The deformation model that defines the exponential map
        (:class:`~skshapes.LDDMM` for momenta; any model works with its own
        parameter).
    return_path : bool, default=False
        Return the ``n_steps + 1`` shapes along the geodesic instead of the
        final one.

    Returns
    -------
    PolyData or list of PolyData
        The deformed template at time 1 (same connectivity, dtype and
        device as ``template``), i.e. ``model.morph(template, momentum).shape``;
        with ``return_path``, the list of shapes from time 0 (``template``
        itself) to time 1.

    Raises
    ------
    TypeError
        If ``template`` is not a PolyData, ``model`` is not a
        DeformationModel, or ``momentum`` is not numeric.
    ValueError
        If ``momentum`` does not have the shape ``model.parameter_shape(template)``
        or holds NaN or inf, or the model's arguments are invalid.

    See Also
    --------
    TangentPCA : principal modes of momenta, to be shot with this function.
    parallel_transport : moves a momentum to the end of a geodesic.

    References
    ----------
    .. [1] M. Vaillant, M. I. Miller, L. Younes, A. Trouvé, "Statistics on
       diffeomorphisms via tangent space representations", NeuroImage 23,
       S161-S169, 2004.

    Examples
    --------
    >>> import torch, skshapes as sks
    >>> from skshapes.statistics.shooting import shoot
    >>> template = sks.PolyData(torch.rand(20, 2))
    >>> model = sks.LDDMM(sigma=0.5, backend="torch")
    >>> shoot(template, 0.1 * torch.ones(20, 2), model).points.shape
    torch.Size([20, 2])
    """
    template = check_polydata(template, "template")
    if not isinstance(model, DeformationModel):
        raise TypeError(f"model must be a DeformationModel (e.g. sks.LDDMM), got {type(model).__name__}")
    expected = tuple(model.parameter_shape(template))
    if isinstance(momentum, torch.Tensor) and momentum.requires_grad:
        if not bool(torch.isfinite(momentum.detach()).all()):
            raise ValueError("momentum contains NaN or inf values")
        tensor = momentum  # keeps its graph; .to() below copies when it converts
    else:
        tensor = to_tensor(momentum, "momentum")
    check_momentum_shape(tensor, expected, "momentum")
    tensor = tensor.to(device=template.device, dtype=template.dtype)
    result = model.morph(template, tensor, return_path=bool(return_path))
    return result.path if return_path else result.shape

