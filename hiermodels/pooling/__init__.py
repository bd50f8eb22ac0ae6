"""No, complete and partial pooling, fitted and compared (``hm.compare_pooling``)."""
