"""Drop-ins for scikit-learn's GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV and
HalvingRandomSearchCV whose fits run on MPI ranks (see :mod:`.searchcv`)."""

from .searchcv import GridSearchCV, HalvingGridSearchCV, HalvingRandomSearchCV, RandomizedSearchCV
from .where import use_comm

__all__ = ["GridSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV", "RandomizedSearchCV", "use_comm"]
