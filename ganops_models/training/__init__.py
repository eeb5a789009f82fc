"""Training machinery shared by every model: options, the recipe contract, the loop, the divergence
guard, reporting and data-parallel helpers. It knows models only through the recipe contract
(:mod:`ganops_models.training.recipe`); the models themselves live in :mod:`ganops_models.models`."""
