"""Business modules: each adds its lines to a model and knows nothing of Excel."""
