"""DeepProbLog's ``deepproblog.utils`` names used by scripts: confusion matrices, loggers, stop conditions."""
