"""Black-box meta-learners in PyTorch (chapter 9): the conditional neural process.

Mirrors :mod:`course_utils.tensorflow.blackbox` name for name; parameter layouts and NumPy
references are in :mod:`course_utils.blackbox`. The CNP registers with ``meta_train`` as
``"cnp"``: its meta-step is the gradient of the Gaussian negative log-likelihood of each task's
targets (support and query points, as in Garnelo et al.) given its support set, averaged over the
batch. No inner loop: ``inner_lr`` and ``steps`` are ignored.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from course_utils.blackbox import CNP_SIGMA_FLOOR, _check_cnp_tasks, check_cnp_call
from course_utils.torch.core import mlp_forward
from course_utils.torch.training import register_meta_method

__all__ = ["cnp_forward", "cnp_loss"]

Params = dict[str, torch.Tensor]


def cnp_forward(params: Params, x_context: torch.Tensor, y_context: torch.Tensor,
                x_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The CNP's predictive Gaussian at ``x_target`` given the context pairs.

    Args:
        params: CNP weights (:func:`course_utils.blackbox.init_cnp`), tensors.
        x_context (..., n_c, x_dim), y_context (..., n_c, y_dim): each task's support set.
        x_target (..., n_t, x_dim): inputs to predict at (same leading task axes).

    Returns:
        μ and σ, each (..., n_t, y_dim); σ >= ``CNP_SIGMA_FLOOR``.
    """
    enc, dec = check_cnp_call(params, x_context, y_context, x_target)
    r = mlp_forward(enc, torch.cat([x_context, y_context], -1)).mean(-2, keepdim=True)   # (..., 1, r_dim)
    r = r.expand(*x_target.shape[:-1], r.shape[-1])
    mu, raw = mlp_forward(dec, torch.cat([r, x_target], -1)).chunk(2, dim=-1)
    return mu, CNP_SIGMA_FLOOR + (1.0 - CNP_SIGMA_FLOOR) * F.softplus(raw)


def cnp_loss(params: Params, x_support: torch.Tensor, y_support: torch.Tensor, x_query: torch.Tensor,
             y_query: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood of every task's support and query targets given its support set.

    Shapes: (tasks, K, x_dim), (tasks, K, y_dim), (tasks, Q, x_dim), (tasks, Q, y_dim); returns a scalar.
    """
    _check_cnp_tasks(params, x_support, y_support, x_query, y_query)
    x_t, y_t = torch.cat([x_support, x_query], -2), torch.cat([y_support, y_query], -2)
    mu, sigma = cnp_forward(params, x_support, y_support, x_t)
    return (0.5 * torch.log(torch.tensor(2 * torch.pi)) + torch.log(sigma) + 0.5 * ((y_t - mu) / sigma) ** 2).mean()


def _cnp_step(*, inner_lr, steps, first_order, forward, loss_fn):
    def step(params, x_support, y_support, x_query, y_query):
        theta = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        loss = cnp_loss(theta, x_support, y_support, x_query, y_query)
        grads = torch.autograd.grad(loss, list(theta.values()))
        return loss.detach(), dict(zip(theta, grads))
    return step


register_meta_method("cnp", _cnp_step, doc="conditional neural process (black box: no inner loop; "
                                           "inner_lr, steps, forward and loss_fn are ignored)")
