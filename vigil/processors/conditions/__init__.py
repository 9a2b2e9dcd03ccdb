"""The condition language: ``grammar.lark``, ``parser`` (syntax errors with a caret), ``ast``
(plain-tuple trees and a printer) and ``evaluate`` (compiled to closures over an env)."""

from vigil.processors.conditions.evaluate import Condition, Labelled, compile_condition

__all__ = ["Condition", "Labelled", "compile_condition"]
