"""DeepProbLog's public API on nesy_gedi: change ``deepproblog`` to ``nesy_gedi.deepproblog`` in the imports.

    from nesy_gedi.deepproblog.dataset import DataLoader
    from nesy_gedi.deepproblog.engines import ExactEngine
    from nesy_gedi.deepproblog.evaluate import get_confusion_matrix
    from nesy_gedi.deepproblog.model import Model
    from nesy_gedi.deepproblog.network import Network
    from nesy_gedi.deepproblog.train import train_model

Same signatures and behaviour (networks return probabilities; ``save_state``
files are DeepProbLog's zip format), evaluated exactly on batched circuits.
Learnable ``t(P)``/``t(_)`` probabilities train with ``model.optimizer =
SGD(model, param_lr)`` as in DeepProbLog.  Not supported, said when used:
``ApproximateEngine``, embeddings, ``with_negatives``.
"""

from problog.logic import Constant, Term, Var

from .dataset import DataLoader, Dataset
from .engines import ApproximateEngine, ExactEngine
from .evaluate import get_confusion_matrix, get_fact_accuracy
from .model import Model, Result
from .network import Network
from .query import Query
from .train import TrainObject, train_model
from .utils.confusion_matrix import ConfusionMatrix

__all__ = ["ApproximateEngine", "ConfusionMatrix", "Constant", "DataLoader", "Dataset", "ExactEngine", "Model",
           "Network", "Query", "Result", "Term", "TrainObject", "Var", "get_confusion_matrix", "get_fact_accuracy",
           "train_model"]
