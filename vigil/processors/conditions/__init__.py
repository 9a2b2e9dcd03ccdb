"""The condition language: grammar, parser, compiled evaluation."""

from vigil.processors.conditions.evaluate import Condition, ConditionTypeError, compile_condition

__all__ = ["Condition", "ConditionTypeError", "compile_condition"]
