"""DeepProbLog's ``deepproblog.utils.cache``: memoise a function in memory.  Its on-disk cache (pickled files) is not
supported: loading pickles from disk can run code."""

from __future__ import annotations

from typing import Callable, Generic, Hashable, TypeVar

from .._unsupported import refuse

K = TypeVar("K")
T = TypeVar("T")


class Cache(Generic[K, T]):
    def __init__(self, func: Callable[[K], T], cache: bool, cache_root,
                 key_func: Callable[[K], Hashable] = lambda x: x) -> None:
        if cache_root is not None:
            refuse("Cache(cache_root=...) (an on-disk cache of pickled files)", "cache in memory (cache_root=None)")
        self.func, self.cache, self.key_func = func, cache, key_func
        self.cache_dict: dict[Hashable, T] = {}

    def __getitem__(self, item: K) -> T:
        return self.get(item)

    def get(self, item: K) -> T:
        return self.get_from_dict(item) if self.cache else self.func(item)

    def get_from_dict(self, item: K) -> T:
        key = self.key_func(item)
        if key not in self.cache_dict:
            self.cache_dict[key] = self.func(item)
        return self.cache_dict[key]

    def get_from_file(self, item: K, cache_key=None) -> T:
        refuse("Cache.get_from_file (an on-disk cache of pickled files)", "cache in memory")

    def invalidate(self) -> None:
        self.cache_dict.clear()
