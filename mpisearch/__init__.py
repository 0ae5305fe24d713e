"""mpisearch: distributed hyperparameter search for scikit-learn estimators, on MPI."""

from .dropin import GridSearchCV, HalvingGridSearchCV, HalvingRandomSearchCV, RandomizedSearchCV
from .search import MPISearchCV
from .space import Categorical, Integer, Real

__version__ = "0.1.0"

__all__ = ["Categorical", "GridSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV", "Integer", "MPISearchCV",
           "RandomizedSearchCV", "Real", "__version__"]
