"""GEDI: one network as classifier p(y|x) = softmax f(x) and energy E(x) = -logsumexp f(x).

Sansone & Manhaeve, "A Bayesian Unification of Self-Supervised Clustering and
Energy-Based Models".  :class:`GEDIObjective` combines a generative term
(contrastive divergence with SGLD samples, :mod:`.sgld`), an augmentation
invariance term and a uniformity prior over cluster assignments.
"""

from .cluster_sizes import ClusterSizes
from .estimators import EstimatorConfig, annealed_langevin, dsm_loss
from .objective import GEDIObjective, GEDITerms, GEDIWeights, energy, size_prior_loss
from .ood import auroc, energy_scores, fpr_at_tpr, gradient_norm_scores, max_softmax_scores, ood_report
from .saturation import SaturationMonitor, gen_floor
from .sgld import ReplayBuffer, SGLDConfig, SGLDSampler

__all__ = ["ClusterSizes", "EstimatorConfig", "GEDIObjective", "GEDITerms", "GEDIWeights", "ReplayBuffer", "SGLDConfig",
           "SGLDSampler", "SaturationMonitor", "annealed_langevin", "auroc", "dsm_loss", "energy", "energy_scores",
           "fpr_at_tpr", "gen_floor", "gradient_norm_scores", "max_softmax_scores", "ood_report", "size_prior_loss"]
