"""Data for the course: the dataset registry, embedded files, derived tasks.

>>> from course_utils.data import load_data
>>> data = load_data()          # mnist_5k unless COURSE_DATASET says otherwise
"""

from course_utils.data.derived import (
    AnswerKey,
    CorruptedSet,
    adding_problem,
    corrupted_copy,
    ink_regression,
    one_vs_rest,
    rows_as_sequence,
)
from course_utils.data.download import TORCHVISION_SETS, DatasetUnavailable
from course_utils.data.registry import (
    DATASETS,
    DEFAULT_DATASET,
    CourseData,
    Split,
    data_dir,
    dataset_name,
    load_data,
    stratified_splits,
)

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "TORCHVISION_SETS",
    "AnswerKey",
    "CorruptedSet",
    "CourseData",
    "DatasetUnavailable",
    "Split",
    "adding_problem",
    "corrupted_copy",
    "data_dir",
    "dataset_name",
    "ink_regression",
    "load_data",
    "one_vs_rest",
    "rows_as_sequence",
    "stratified_splits",
]
