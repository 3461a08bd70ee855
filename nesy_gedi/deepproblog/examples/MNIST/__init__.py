"""``nesy_gedi.deepproblog.examples.MNIST``: the MNIST tasks' data (``data``) and network (``network``)."""
