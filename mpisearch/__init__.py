"""mpisearch: distributed hyperparameter search for scikit-learn estimators, on MPI."""

from .search import MPISearchCV
from .space import Categorical, Integer, Real

__version__ = "0.1.0"

__all__ = ["Categorical", "Integer", "MPISearchCV", "Real", "__version__"]
