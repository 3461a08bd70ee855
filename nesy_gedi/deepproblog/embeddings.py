"""DeepProbLog's ``deepproblog.embeddings`` (term embeddings inside programs): not supported; embed inputs with a
network and pass the tensors as query inputs."""

from __future__ import annotations

from abc import ABC

from ._unsupported import refuse

ALTERNATIVE = "embed inputs with a network and pass the tensors as query inputs"


class TermEmbedder(ABC):
    def get_embedding(self, term):
        refuse("term embeddings", ALTERNATIVE)

    def zero_grad(self) -> None:
        refuse("term embeddings", ALTERNATIVE)

    def step(self) -> None:
        refuse("term embeddings", ALTERNATIVE)


class OneHotEncoding(TermEmbedder):
    def __init__(self, n: int) -> None:
        refuse("embeddings (OneHotEncoding)", ALTERNATIVE)


class Embedding(TermEmbedder):
    def __init__(self, n: int, block_size: int = 32, renormalize: bool = False) -> None:
        refuse("embeddings (Embedding)", ALTERNATIVE)

    def get_all_embeddings(self, n=None):
        refuse("embeddings (Embedding.get_all_embeddings)", ALTERNATIVE)

    def get_embeddings_by_label(self, labels):
        refuse("embeddings (Embedding.get_embeddings_by_label)", ALTERNATIVE)

    def parameters(self):
        refuse("embeddings (Embedding.parameters)", ALTERNATIVE)
