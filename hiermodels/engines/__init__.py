"""Inference engines: MCMC through ``pm.sample`` and (for meta-analysis) exact integration."""
