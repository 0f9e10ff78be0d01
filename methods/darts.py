"""DARTS (Liu et al., ICLR 2019) on the NB201 cell.

Architecture parameters ``alpha`` (6 edges x 5 ops, initialised at 1e-3 * N(0, 1) as in
DARTS) weight the ops of every edge through a softmax; the supernet runs its mixed forward.
Each step first updates ``alpha`` on a *valid* batch with Adam (lr 3e-4, betas (0.5, 0.999),
weight decay 1e-3), then the supernet weights on the training batch with the trainer's SGD.

- ``order=1``: the gradient of the valid loss with respect to ``alpha`` at the current weights.
- ``order=2``: DARTS' unrolled gradient. With ``w' = w - xi * grad_w L_train(w, alpha)``
  (``xi`` = the current weight learning rate; a plain gradient step with the weight decay,
  without momentum), it is ``grad_alpha L_val(w', alpha) - xi * (grad_alpha L_train(w+, alpha)
  - grad_alpha L_train(w-, alpha)) / (2 eps)`` where ``w+- = w +- eps * grad_w' L_val(w', alpha)``
  and ``eps = 0.01 / ||grad_w' L_val||`` (the paper's finite-difference approximation).

The derived architecture is the argmax over all five ops of each edge (``none`` included,
as NB201's DARTS code does). ``end_epoch`` reports it every epoch, and the trainer adds its
accuracy in the CIFAR-10 table (``derived_table_accuracy``; null on datasets without a
table), so a run shows whether DARTS collapses to skip-connections on NB201 (54.30% in the
NB201 paper).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness import Searcher, StepContext, SupernetMethod, register_searcher
from harness.space import NUM_EDGES, NUM_OPS, OPS, Architecture


class _Fixed(Searcher):
    """A search stage that always proposes one architecture (DARTS' derived cell)."""

    def __init__(self, arch: Architecture, seed: int = 0) -> None:
        super().__init__(seed)
        self.arch = arch

    def _ask(self) -> Architecture:
        return self.arch


@register_searcher("darts")
class DARTS(SupernetMethod):
    """Differentiable search over softmax-weighted ops; first or second order."""

    has_architecture_parameters = True

    def __init__(self, seed: int = 0, order: int = 1, arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3,
                 arch_betas: tuple[float, float] = (0.5, 0.999)) -> None:
        super().__init__(seed)
        if order not in (1, 2):
            raise ValueError(f"order must be 1 (first order) or 2 (second order), got {order!r}")
        self.order, self.arch_lr, self.arch_weight_decay = order, float(arch_lr), float(arch_weight_decay)
        self.arch_betas = tuple(float(b) for b in arch_betas)
        init = 1e-3 * self.rng.standard_normal((NUM_EDGES, NUM_OPS))
        self.alpha = nn.Parameter(torch.tensor(init, dtype=torch.float32))
        self.arch_optimizer = self._make_optimizer()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([self.alpha], lr=self.arch_lr, betas=self.arch_betas,
                                weight_decay=self.arch_weight_decay)

    def hyperparameters(self) -> dict[str, Any]:
        return {"order": self.order, "arch_lr": self.arch_lr, "arch_weight_decay": self.arch_weight_decay,
                "arch_betas": list(self.arch_betas)}

    def setup(self, model: nn.Module) -> None:
        device = next(model.parameters()).device
        if self.alpha.device != device:
            self.alpha = nn.Parameter(self.alpha.detach().to(device))
            self.arch_optimizer = self._make_optimizer()

    def weights(self) -> torch.Tensor:
        return F.softmax(self.alpha, dim=-1)

    def derived(self) -> Architecture:
        return Architecture(tuple(int(i) for i in self.alpha.detach().argmax(dim=-1).tolist()))

    # -- the two updates ------------------------------------------------------------------
    def _loss(self, ctx: StepContext, images, labels, weights: torch.Tensor) -> torch.Tensor:
        with ctx.autocast():
            return F.cross_entropy(ctx.model(images, weights=weights), labels)

    def arch_gradient(self, ctx: StepContext, train_batch, valid_batch) -> torch.Tensor:
        """d L_val / d alpha, first order or DARTS' second-order approximation."""
        model = ctx.model
        params = [p for p in model.parameters() if p.requires_grad]
        if self.order == 1:
            loss = self._loss(ctx, *valid_batch, self.weights())
            return torch.autograd.grad(loss, self.alpha)[0]
        weight_decay = ctx.optimizer.param_groups[0].get("weight_decay", 0.0)
        xi = ctx.lr
        originals = [p.detach().clone() for p in params]
        train_loss = self._loss(ctx, *train_batch, self.weights())
        grads = torch.autograd.grad(train_loss, params, allow_unused=True)
        with torch.no_grad():  # w' = w - xi * (grad + wd * w)
            for p, g in zip(params, grads, strict=True):
                p.sub_(xi * ((g if g is not None else 0.0) + weight_decay * p))
        val_loss = self._loss(ctx, *valid_batch, self.weights())
        grads_at_unrolled = torch.autograd.grad(val_loss, [self.alpha, *params], allow_unused=True)
        alpha_grad = grads_at_unrolled[0]
        vector = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads_at_unrolled[1:], params,
                                                                           strict=True)]
        norm = torch.sqrt(sum((v * v).sum() for v in vector))
        eps = 0.01 / max(float(norm), 1e-12)
        hessian_terms = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, w, v in zip(params, originals, vector, strict=True):
                    p.copy_(w + sign * eps * v)
            loss = self._loss(ctx, *train_batch, self.weights())
            hessian_terms.append(torch.autograd.grad(loss, self.alpha)[0])
        with torch.no_grad():
            for p, w in zip(params, originals, strict=True):
                p.copy_(w)
        return alpha_grad - xi * (hessian_terms[0] - hessian_terms[1]) / (2 * eps)

    def train_step(self, ctx: StepContext, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid_batch = ctx.valid_batch()
        self.arch_optimizer.zero_grad(set_to_none=True)
        self.alpha.grad = self.arch_gradient(ctx, (images, labels), valid_batch).detach()
        self.arch_optimizer.step()
        ctx.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(ctx, images, labels, self.weights().detach())
        loss.backward()
        ctx.clip_and_step()
        return loss.detach()

    def end_epoch(self, ctx: StepContext, epoch: int) -> dict[str, Any]:
        weights = self.weights().detach().cpu().numpy()
        derived = self.derived()
        mean_weight = weights.mean(axis=0)
        return {"derived_arch": derived.to_string(),
                **{f"mean_weight_{OPS[o]}": float(mean_weight[o]) for o in range(NUM_OPS)},
                "skip_edges": int(np.sum(np.array(derived.ops) == OPS.index("skip_connect")))}

    def search_stage(self) -> Searcher:
        return _Fixed(self.derived(), self.seed)

    def _training_state(self) -> dict[str, Any]:
        return {"alpha": self.alpha.detach().cpu().clone(), "arch_optimizer": self.arch_optimizer.state_dict()}

    def _load_training_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.alpha.copy_(state["alpha"].to(self.alpha.device))
        self.arch_optimizer = self._make_optimizer()
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
