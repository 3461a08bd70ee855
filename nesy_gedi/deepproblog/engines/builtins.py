"""DeepProbLog's ``deepproblog.engines.builtins``: tensor predicates (``add/3``, ``rbf/3``, ``one_hot/3``...) that a
program calls as foreign Python functions.  nesy_gedi compiles programs to circuits and does not call Python from
them, so these are not supported; compute such values inside a network."""

from __future__ import annotations

from typing import Callable

from .._unsupported import refuse

ALTERNATIVE = "compute tensor values inside a network, whose outputs the program reads"


def _refuse(name: str):
    refuse(f"tensor builtin {name} (foreign predicates)", ALTERNATIVE)


def embed(engine, term): _refuse("embed")
def to_tensor(model, a): _refuse("to_tensor")
def tensor_wrapper(engine, func: Callable, *args): _refuse("tensor_wrapper")
def tensor_wrapper_nondet(engine, func: Callable, *args): _refuse("tensor_wrapper_nondet")
def rbf(x, y): _refuse("rbf")
def add(x, y): _refuse("add")
def mul(x, y): _refuse("mul")
def dot(x, y): _refuse("dot")
def sigmoid(x): _refuse("sigmoid")
def max(x): _refuse("max")  # noqa: A001 (DeepProbLog's name)
def mean(x): _refuse("mean")
def one_hot(i, n): _refuse("one_hot")
def cat(tensors): _refuse("cat")
def stack(tensors): _refuse("stack")
def list_to_tensor(list_term): _refuse("list_to_tensor")
def tensor_index(tensor, index): _refuse("tensor_index")
def less_than(tensor1, tensor2): _refuse("less_than")
def register_tensor_predicates(engine): _refuse("register_tensor_predicates")
