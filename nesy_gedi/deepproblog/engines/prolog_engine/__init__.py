"""DeepProbLog's ``deepproblog.engines.prolog_engine``: the SWI-Prolog proof search behind ``ApproximateEngine``, not
supported here (see :mod:`..approximate_engine`)."""
