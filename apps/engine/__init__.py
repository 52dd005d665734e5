"""Nexus workflow engine: pure-Python compilation and execution of workflow definitions (no Django)."""

from .compiler import compile_workflow
from .errors import ConfigError, DefinitionError, EngineError, InputError, NodeError, RunInterrupted
from .limits import Limits
from .nodes import default_registry
from .registry import CompileContext, NodeRegistry, NodeType, RunContext
from .runtime import CompiledWorkflow, RunResult, ThreadBudget

__all__ = [
    "CompileContext",
    "CompiledWorkflow",
    "ConfigError",
    "DefinitionError",
    "EngineError",
    "InputError",
    "Limits",
    "NodeError",
    "NodeRegistry",
    "NodeType",
    "RunContext",
    "RunInterrupted",
    "RunResult",
    "ThreadBudget",
    "compile_workflow",
    "default_registry",
]
