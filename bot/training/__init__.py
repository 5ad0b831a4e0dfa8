"""Training data: the Rasa 3.x NLU YAML files, read with file and line positions; the story
reader, story graph, story validation and visualisation are modules of this package."""

from bot.training.data import (
    EntityAnnotation,
    Example,
    LookupTable,
    Problem,
    RegexPattern,
    Source,
    Synonym,
    TrainingData,
)
from bot.training.nlu_yaml import load_nlu_files, read_nlu_file

__all__ = [
    "EntityAnnotation",
    "Example",
    "LookupTable",
    "Problem",
    "RegexPattern",
    "Source",
    "Synonym",
    "TrainingData",
    "load_nlu_files",
    "read_nlu_file",
]
