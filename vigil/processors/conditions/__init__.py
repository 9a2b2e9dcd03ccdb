"""The condition language: grammar, parser, syntax tree and printer, compiled evaluation."""

from vigil.processors.conditions.evaluate import (
    Condition,
    ConditionTypeError,
    Labelled,
    compile_condition,
)

__all__ = ["Condition", "ConditionTypeError", "Labelled", "compile_condition"]
