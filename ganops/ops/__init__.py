"""Public op families: validation, backend dispatch and autograd. One family per module."""
