"""Inference engines: MCMC through nutpie or ``pm.sample`` (the full model), the marginal
Gaussian engine (group effects integrated out, then drawn exactly), their compiled-model
caches, and (for meta-analysis) exact integration."""
